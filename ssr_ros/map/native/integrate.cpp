// Compiled CPU kernels of ssr_ros.map.integration (same arithmetic, operation by operation).
//
// prepare_frame: clean the depth image, count valid pixels and list the blocks within the
//                truncation distance of the points on the allocation stride grid.
// integrate_blocks: project every voxel of the given blocks and fuse TSDF, weight, color and
//                   semantic evidence in place.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#ifdef __F16C__
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kBitmapLimit = int64_t(1) << 25;

inline float round_even(float x) { return std::nearbyint(x); }

// float16 <-> float32 with round-to-nearest-even (hardware F16C when compiled for it).
inline float half_to_float(const at::Half& h) {
#ifdef __F16C__
  return _cvtsh_ss(h.x);
#else
  return float(h);
#endif
}

inline at::Half float_to_half(float f) {
#ifdef __F16C__
  return at::Half(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT), at::Half::from_bits());
#else
  return at::Half(f);
#endif
}

}  // namespace

std::tuple<bool, torch::Tensor> prepare_frame(
    torch::Tensor depth, std::vector<double> pose_wc, double min_depth, double max_depth,
    double truncation, double block_extent, int64_t stride) {
  TORCH_CHECK(depth.dim() == 2 && depth.scalar_type() == torch::kFloat32 && depth.is_contiguous(),
              "depth must be a contiguous (H, W) float32 tensor");
  TORCH_CHECK(pose_wc.size() == 16, "pose must have 16 entries");
  const int64_t H = depth.size(0), W = depth.size(1);
  const float* d_in = depth.data_ptr<float>();
  const float lo_d = float(min_depth), hi_d = float(max_depth);
  bool has_valid = false;  // any finite positive pixel (out-of-range ones included)
  for (int64_t i = 0; i < H * W && !has_valid; ++i) has_valid = std::isfinite(d_in[i]) && d_in[i] > 0.f;
  float R[9], t[3];
  for (int i = 0; i < 9; ++i) R[i] = float(pose_wc[i]);
  for (int i = 0; i < 3; ++i) t[i] = float(pose_wc[9 + i]);
  const float fx = float(pose_wc[12]), fy = float(pose_wc[13]), cx = float(pose_wc[14]), cy = float(pose_wc[15]);
  const float trunc = float(truncation), extent = float(block_extent);
  std::vector<int64_t> lo, hi;
  lo.reserve(3 * (H / stride + 1) * (W / stride + 1));
  hi.reserve(lo.capacity());
  for (int64_t v = 0; v < H; v += stride) {
    for (int64_t u = 0; u < W; u += stride) {
      const float raw = d_in[v * W + u];
      const float d = (raw >= lo_d && raw <= hi_d) ? raw : 0.f;
      if (!(d > 0.f)) continue;
      float uf = float(u), vf = float(v);
      float x = (uf - cx) / fx * d;
      float y = (vf - cy) / fy * d;
      float p[3];
      for (int r = 0; r < 3; ++r) p[r] = R[3 * r] * x + R[3 * r + 1] * y + R[3 * r + 2] * d + t[r];
      for (int r = 0; r < 3; ++r) {
        lo.push_back(int64_t(std::floor((p[r] - trunc) / extent)));
        hi.push_back(int64_t(std::floor((p[r] + trunc) / extent)));
      }
    }
  }
  const int64_t P = int64_t(lo.size() / 3);
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  if (P == 0) return {has_valid, torch::empty({0, 3}, opts)};
  int64_t bmin[3], bmax[3];
  for (int r = 0; r < 3; ++r) {
    bmin[r] = std::numeric_limits<int64_t>::max();
    bmax[r] = std::numeric_limits<int64_t>::min();
  }
  for (int64_t i = 0; i < P; ++i)
    for (int r = 0; r < 3; ++r) {
      bmin[r] = std::min(bmin[r], lo[3 * i + r]);
      bmax[r] = std::max(bmax[r], hi[3 * i + r]);
    }
  const int64_t dims[3] = {bmax[0] - bmin[0] + 1, bmax[1] - bmin[1] + 1, bmax[2] - bmin[2] + 1};
  std::vector<int64_t> out;
  if (dims[0] * dims[1] * dims[2] <= kBitmapLimit) {
    std::vector<uint8_t> bitmap(size_t(dims[0] * dims[1] * dims[2]), 0);
    for (int64_t i = 0; i < P; ++i)
      for (int64_t x = lo[3 * i]; x <= hi[3 * i]; ++x)
        for (int64_t y = lo[3 * i + 1]; y <= hi[3 * i + 1]; ++y)
          for (int64_t z = lo[3 * i + 2]; z <= hi[3 * i + 2]; ++z)
            bitmap[size_t(((x - bmin[0]) * dims[1] + (y - bmin[1])) * dims[2] + (z - bmin[2]))] = 1;
    for (int64_t c = 0; c < int64_t(bitmap.size()); ++c) {
      if (!bitmap[size_t(c)]) continue;
      out.push_back(c / (dims[1] * dims[2]) + bmin[0]);
      out.push_back((c / dims[2]) % dims[1] + bmin[1]);
      out.push_back(c % dims[2] + bmin[2]);
    }
  } else {
    std::vector<std::array<int64_t, 3>> all;
    for (int64_t i = 0; i < P; ++i)
      for (int64_t x = lo[3 * i]; x <= hi[3 * i]; ++x)
        for (int64_t y = lo[3 * i + 1]; y <= hi[3 * i + 1]; ++y)
          for (int64_t z = lo[3 * i + 2]; z <= hi[3 * i + 2]; ++z) all.push_back({x, y, z});
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    for (auto& c : all) out.insert(out.end(), c.begin(), c.end());
  }
  auto coords = torch::from_blob(out.data(), {int64_t(out.size() / 3), 3}, opts).clone();
  return {has_valid, coords};
}

// One vote of the leader / challenger evidence update (see semantic_evidence.py).
static inline void update_evidence(int64_t& l1, int64_t& l2, float& c1, float& c2, float& total,
                                   int64_t vote, float weight, float max_total) {
  const bool has = weight > 0.f;
  total = total + weight;
  const bool m1 = has && (c1 > 0.f) && (l1 == vote);
  const bool m2 = has && !m1 && (c2 > 0.f) && (l2 == vote);
  c1 = c1 + (m1 ? weight : 0.f);
  c2 = c2 + (m2 ? weight : 0.f);
  const bool other = has && !m1 && !m2;
  const bool e1 = other && (c1 <= 0.f);
  const bool e2 = other && !e1 && (c2 <= 0.f);
  const bool full = other && !e1 && !e2;
  const float dec = full ? std::min(c2, weight) : 0.f;
  c2 = c2 - dec;
  const float rest = weight - dec;
  const bool refill = full && (rest > 0.f);
  if (e1) { l1 = vote; c1 = weight; }
  if (e2 || refill) l2 = vote;
  c2 = e2 ? weight : (refill ? rest : c2);
  if (c2 > c1) { std::swap(l1, l2); std::swap(c1, c2); }
  if (total > max_total) {
    const float scale = max_total / total;
    c1 = c1 * scale;
    c2 = c2 * scale;
    total = max_total;
  }
}

torch::Tensor integrate_blocks(
    torch::Tensor tsdf, torch::Tensor weight, torch::Tensor color, torch::Tensor sem_label,
    torch::Tensor sem_count, torch::Tensor block_coords, torch::Tensor slots, torch::Tensor depth,
    c10::optional<torch::Tensor> rgb, c10::optional<torch::Tensor> sem_labels,
    c10::optional<torch::Tensor> sem_weights, std::vector<double> proj, int64_t width, int64_t height, double min_depth, double max_depth,
    double voxel_size, int64_t block_size, double truncation, double max_weight, bool inverse_square,
    double semantic_max_weight, bool weight_dropoff) {
  TORCH_CHECK(proj.size() == 16, "projection must have 16 entries");
  TORCH_CHECK(tsdf.is_contiguous() && weight.is_contiguous() && color.is_contiguous() &&
                  sem_label.is_contiguous() && sem_count.is_contiguous() && depth.is_contiguous(),
              "tensors must be contiguous");
  const int64_t M = slots.numel();
  const int64_t B = block_size, V = B * B * B;
  TORCH_CHECK(B == 4 || B == 8 || B == 16, "block_size must be 4, 8 or 16");
  const int shift = B == 4 ? 2 : (B == 8 ? 3 : 4);
  auto changed = torch::zeros({M}, torch::TensorOptions().dtype(torch::kBool));
  if (M == 0) return changed;
  auto slots_c = slots.contiguous();
  const int64_t* slot_ptr = slots_c.data_ptr<int64_t>();
  auto coords_c = block_coords.contiguous();
  const int64_t* coord_ptr = coords_c.data_ptr<int64_t>();
  at::Half* tsdf_ptr = tsdf.data_ptr<at::Half>();
  at::Half* weight_ptr = weight.data_ptr<at::Half>();
  uint8_t* color_ptr = color.data_ptr<uint8_t>();
  uint8_t* label_ptr = sem_label.data_ptr<uint8_t>();
  at::Half* count_ptr = sem_count.data_ptr<at::Half>();
  const float* depth_ptr = depth.data_ptr<float>();
  torch::Tensor rgb_c, lab_c, lw_c;
  const uint8_t* rgb_ptr = nullptr;
  const int64_t* lab_ptr = nullptr;
  const float* lw_ptr = nullptr;
  int64_t K = 0;
  if (rgb.has_value()) { rgb_c = rgb->contiguous(); rgb_ptr = rgb_c.data_ptr<uint8_t>(); }
  if (sem_labels.has_value()) {
    lab_c = sem_labels->to(torch::kInt64).contiguous();
    lab_ptr = lab_c.data_ptr<int64_t>();
    K = lab_c.size(-1);
    if (sem_weights.has_value()) { lw_c = sem_weights->to(torch::kFloat32).contiguous(); lw_ptr = lw_c.data_ptr<float>(); }
  }
  bool* changed_ptr = changed.data_ptr<bool>();
  float R[9], t[3];
  for (int i = 0; i < 9; ++i) R[i] = float(proj[i]);
  for (int i = 0; i < 3; ++i) t[i] = float(proj[9 + i]);
  const float fx = float(proj[12]), fy = float(proj[13]), cx = float(proj[14]), cy = float(proj[15]);
  const float vs = float(voxel_size), trunc = float(truncation), neg_trunc = float(-truncation);
  const float max_w = float(max_weight), sem_max = float(semantic_max_weight);
  const float dropoff_den = float(truncation - voxel_size);
  const float Wf = float(width), Hf = float(height);
  const float lo_d = float(min_depth), hi_d = float(max_depth);

  at::parallel_for(0, M, 4, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t slot = slot_ptr[b];
      const int64_t bx = coord_ptr[3 * slot] * B, by = coord_ptr[3 * slot + 1] * B, bz = coord_ptr[3 * slot + 2] * B;
      bool any = false;
      float rx[3][16], ry[3][16], rz[3][16];  // R[r][c] * coordinate, per voxel row/column/layer
      for (int64_t q = 0; q < B; ++q) {
        const float px = (float(bx + q) + 0.5f) * vs;
        const float py = (float(by + q) + 0.5f) * vs;
        const float pz = (float(bz + q) + 0.5f) * vs;
        for (int r = 0; r < 3; ++r) {
          rx[r][q] = R[3 * r] * px;
          ry[r][q] = R[3 * r + 1] * py;
          rz[r][q] = R[3 * r + 2] * pz;
        }
      }
      for (int64_t n = 0; n < V; ++n) {
        const int64_t i = n & (B - 1), j = (n >> shift) & (B - 1), k = n >> (2 * shift);
        const float z = rx[2][i] + ry[2][j] + rz[2][k] + t[2];
        if (!(z > 0.f)) continue;
        const float xc = rx[0][i] + ry[0][j] + rz[0][k] + t[0];
        const float yc = rx[1][i] + ry[1][j] + rz[1][k] + t[1];
        const float u = round_even(fx * xc / z + cx);
        const float v = round_even(fy * yc / z + cy);
        if (!(u >= 0.f && u < Wf && v >= 0.f && v < Hf)) continue;
        const int64_t pixel = int64_t(v) * width + int64_t(u);
        const float raw = depth_ptr[pixel];
        const float d = (raw >= lo_d && raw <= hi_d) ? raw : 0.f;  // as clean_depth() does
        if (!(d > 0.f)) continue;
        const float sdf = d - z;
        if (!(sdf >= neg_trunc)) continue;
        any = true;
        const int64_t idx = slot * V + n;
        const float tsdf_old = half_to_float(tsdf_ptr[idx]);
        const float weight_stored = half_to_float(weight_ptr[idx]);
        const bool predicted = weight_stored < 0.f;
        const float weight_old = predicted ? 0.f : weight_stored;
        const float observation = std::min(sdf / trunc, 1.0f);
        float w = inverse_square ? 1.0f / (d * d) : 1.0f;
        if (weight_dropoff && sdf < -vs) w = w * ((trunc + sdf) / dropoff_den);
        const float weight_sum = weight_old + w;
        tsdf_ptr[idx] = float_to_half((tsdf_old * weight_old + observation * w) / weight_sum);
        weight_ptr[idx] = float_to_half(std::min(weight_sum, max_w));
        if (rgb_ptr) {
          for (int c = 0; c < 3; ++c) {
            const float old = float(color_ptr[3 * idx + c]);
            const float obs = float(rgb_ptr[3 * pixel + c]);
            float value = round_even((old * weight_old + obs * w) / weight_sum);
            value = std::min(std::max(value, 0.f), 255.f);
            color_ptr[3 * idx + c] = uint8_t(value);
          }
        }
        if (predicted || lab_ptr) {
          float c1 = half_to_float(count_ptr[3 * idx]), c2 = half_to_float(count_ptr[3 * idx + 1]), total = half_to_float(count_ptr[3 * idx + 2]);
          int64_t l1 = label_ptr[2 * idx], l2 = label_ptr[2 * idx + 1];
          if (predicted) { c1 = 0.f; c2 = 0.f; total = 0.f; }
          if (lab_ptr && sdf < trunc) {
            for (int64_t s = 0; s < K; ++s) {
              const int64_t vote = lab_ptr[pixel * K + s];
              const float strength = lw_ptr ? w * lw_ptr[pixel * K + s] : w;
              const float vote_w = vote > 0 ? strength : 0.f;
              update_evidence(l1, l2, c1, c2, total, vote, vote_w, sem_max);
            }
          }
          label_ptr[2 * idx] = uint8_t(l1);
          label_ptr[2 * idx + 1] = uint8_t(l2);
          count_ptr[3 * idx] = float_to_half(c1);
          count_ptr[3 * idx + 1] = float_to_half(c2);
          count_ptr[3 * idx + 2] = float_to_half(total);
        }
      }
      changed_ptr[b] = any;
    }
  });
  return changed;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("prepare_frame", &prepare_frame, "clean depth, count valid pixels, list touched blocks");
  m.def("integrate_blocks", &integrate_blocks, "fuse a frame into the voxels of the given blocks");
}

// Compiled CPU kernels of ssr_ros.map.integration (same arithmetic, operation by operation).
//
// plan_frame: clean the depth image on the fly, list the blocks within the truncation distance
//             of the points on the allocation stride grid, insert them into the sorted-key block
//             hash and add the allocated blocks seen in front of the surface (space carving).
// integrate_blocks: project every voxel of the given blocks and fuse TSDF, weight, color and
//                   semantic evidence in place (per-class probabilities: the voxels' votes are
//                   listed, then only the pixels they name are read, in memory order).
//
// The voxel loop runs in two vectorisable passes per block (projection and depth look-up, then
// the TSDF / weight / color update for the whole block with a select), and blocks are spread
// over worker threads that claim small chunks from a shared counter. Workers wait passively
// and the calling thread never waits for work nobody has claimed, so a busy CPU slows the
// kernel down but cannot stall it behind a descheduled thread.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kBitmapLimit = int64_t(1) << 25;
constexpr int kCoordBits = 21;
constexpr int64_t kCoordOffset = int64_t(1) << (kCoordBits - 1);

inline float round_even(float x) { return std::rint(x); }  // default rounding: to nearest even

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

// n (a multiple of 8) halves <-> floats.
inline void halves_to_floats(const at::Half* in, float* out, int n) {
#if defined(__F16C__) && defined(__AVX__)
  for (int i = 0; i < n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
#else
  for (int i = 0; i < n; ++i) out[i] = half_to_float(in[i]);
#endif
}

inline void floats_to_halves(const float* in, uint16_t* out, int n) {
#if defined(__F16C__) && defined(__AVX__)
  for (int i = 0; i < n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
#else
  for (int i = 0; i < n; ++i) out[i] = float_to_half(in[i]).x;
#endif
}

int kernel_threads() { return std::max(1, at::get_num_threads()); }

}  // namespace

// Clean depth (on the fly), whether any pixel is finite and positive, and the sorted unique
// blocks within `truncation` of the points on the stride grid (as integration.touched_blocks).
static std::tuple<bool, std::vector<int64_t>> touched_blocks(
    const torch::Tensor& depth, const std::vector<double>& pose_wc, double min_depth, double max_depth,
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
  const int64_t row_points = (W + stride - 1) / stride;
  // per row: the block range of every grid point in vectorisable loops, then the valid points,
  // skipping a point whose range repeats the previous one (neighbours mostly share blocks)
  std::vector<float> row_d(static_cast<size_t>(row_points)), box(static_cast<size_t>(6 * row_points));
  int64_t last[6] = {0, 0, 0, -1, -1, -1};
  for (int64_t v = 0; v < H; v += stride) {
    const float* d_row = d_in + v * W;
    for (int64_t q = 0; q < row_points; ++q) {
      const float raw = d_row[q * stride];
      row_d[size_t(q)] = (raw >= lo_d && raw <= hi_d) ? raw : 0.f;
    }
    const float vf = float(v);
    const float y_ray = (vf - cy) / fy;
    float* out_lo[3] = {box.data(), box.data() + row_points, box.data() + 2 * row_points};
    float* out_hi[3] = {box.data() + 3 * row_points, box.data() + 4 * row_points, box.data() + 5 * row_points};
    for (int64_t q = 0; q < row_points; ++q) {
      const float d = row_d[size_t(q)];
      const float uf = float(q * stride);
      const float x = (uf - cx) / fx * d;
      const float y = y_ray * d;
      for (int r = 0; r < 3; ++r) {
        const float p = R[3 * r] * x + R[3 * r + 1] * y + R[3 * r + 2] * d + t[r];
        out_lo[r][q] = std::floor((p - trunc) / extent);
        out_hi[r][q] = std::floor((p + trunc) / extent);
      }
    }
    for (int64_t q = 0; q < row_points; ++q) {
      if (!(row_d[size_t(q)] > 0.f)) continue;
      int64_t cur[6];
      for (int r = 0; r < 3; ++r) {
        cur[r] = int64_t(out_lo[r][q]);
        cur[3 + r] = int64_t(out_hi[r][q]);
      }
      if (std::equal(cur, cur + 6, last)) continue;
      std::copy(cur, cur + 6, last);
      lo.insert(lo.end(), cur, cur + 3);
      hi.insert(hi.end(), cur + 3, cur + 6);
    }
  }
  const int64_t P = int64_t(lo.size() / 3);
  std::vector<int64_t> out;
  if (P == 0) return {has_valid, out};
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
  return {has_valid, out};
}

std::tuple<bool, torch::Tensor> prepare_frame(
    torch::Tensor depth, std::vector<double> pose_wc, double min_depth, double max_depth,
    double truncation, double block_extent, int64_t stride) {
  auto [has_valid, out] = touched_blocks(depth, pose_wc, min_depth, max_depth, truncation, block_extent, stride);
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto coords = torch::from_blob(out.data(), {int64_t(out.size() / 3), 3}, opts).clone();
  return {has_valid, coords};
}

// Everything before the voxel update, for SemanticTSDF.integrate on CPU. Returns
// (status, slots, new_coords, sorted_keys, sorted_slots): status 0 = ok, 1 = no finite positive
// depth pixel, 2 = touched block coordinates out of the key range (slots then holds the touched
// coordinates, for the error message). On status 0, slots are the blocks to integrate in
// ascending order (touched ones and, with carving, previously allocated blocks whose centre
// projects onto a valid pixel and which reach in front of its depth, as
// integration.carving_blocks), new_coords the (K, 3) blocks allocated now (slots num_blocks...,
// in key order), and
// sorted_keys / sorted_slots the updated hash (the input tensors when nothing was added).
std::tuple<int64_t, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor> plan_frame(
    torch::Tensor depth, std::vector<double> pose_wc, std::vector<double> proj, double min_depth,
    double max_depth, double truncation, double block_extent, int64_t stride, torch::Tensor sorted_keys,
    torch::Tensor sorted_slots, torch::Tensor block_coords, int64_t num_blocks, bool space_carving) {
  TORCH_CHECK(proj.size() == 16, "projection must have 16 entries");
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto [has_valid, touched] = touched_blocks(depth, pose_wc, min_depth, max_depth, truncation, block_extent, stride);
  const int64_t M = int64_t(touched.size() / 3);
  auto empty = torch::empty({0}, opts);
  if (!has_valid) return {1, empty, empty, sorted_keys, sorted_slots};
  for (int64_t i = 0; i < 3 * M; ++i) {
    if (touched[size_t(i)] < -kCoordOffset || touched[size_t(i)] >= kCoordOffset) {
      auto coords = torch::from_blob(touched.data(), {M, 3}, opts).clone();
      return {2, coords, empty, sorted_keys, sorted_slots};
    }
  }
  // touched is in lexicographic order, so are its keys
  std::vector<int64_t> keys(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i)
    keys[size_t(i)] = ((touched[3 * i] + kCoordOffset) << (2 * kCoordBits)) |
                      ((touched[3 * i + 1] + kCoordOffset) << kCoordBits) | (touched[3 * i + 2] + kCoordOffset);
  auto skeys_c = sorted_keys.contiguous();
  auto sslots_c = sorted_slots.contiguous();
  const int64_t N = skeys_c.numel();
  const int64_t* sk = skeys_c.data_ptr<int64_t>();
  const int64_t* ss = sslots_c.data_ptr<int64_t>();
  std::vector<int64_t> slots(static_cast<size_t>(M));
  std::vector<int64_t> fresh, fresh_coords;
  {
    const int64_t* pos = sk;
    for (int64_t i = 0; i < M; ++i) {
      pos = std::lower_bound(pos, sk + N, keys[size_t(i)]);
      if (pos != sk + N && *pos == keys[size_t(i)]) {
        slots[size_t(i)] = ss[pos - sk];
      } else {
        slots[size_t(i)] = num_blocks + int64_t(fresh.size());
        fresh.push_back(keys[size_t(i)]);
        fresh_coords.insert(fresh_coords.end(), touched.begin() + 3 * i, touched.begin() + 3 * i + 3);
      }
    }
  }
  const int64_t K = int64_t(fresh.size());
  torch::Tensor new_coords = torch::from_blob(fresh_coords.data(), {K, 3}, opts).clone();
  torch::Tensor out_keys = sorted_keys, out_slots = sorted_slots;
  if (K > 0) {
    out_keys = torch::empty({N + K}, opts);
    out_slots = torch::empty({N + K}, opts);
    int64_t* ok = out_keys.data_ptr<int64_t>();
    int64_t* os = out_slots.data_ptr<int64_t>();
    int64_t a = 0, b = 0, o = 0;
    while (a < N || b < K) {
      if (b >= K || (a < N && sk[a] < fresh[size_t(b)])) {
        ok[o] = sk[a];
        os[o++] = ss[a++];
      } else {
        ok[o] = fresh[size_t(b)];
        os[o++] = num_blocks + b++;
      }
    }
  }
  const int64_t total = num_blocks + K;
  std::vector<uint8_t> active(size_t(total), 0);
  for (int64_t i = 0; i < M; ++i) active[size_t(slots[size_t(i)])] = 1;
  if (space_carving && num_blocks > 0) {
    auto coords_c = block_coords.contiguous();
    TORCH_CHECK(coords_c.size(0) >= num_blocks, "block_coords holds fewer than num_blocks rows");
    const int64_t* bc = coords_c.data_ptr<int64_t>();
    const float* dp = depth.data_ptr<float>();
    float R[9], t[3];
    for (int i = 0; i < 9; ++i) R[i] = float(proj[i]);
    for (int i = 0; i < 3; ++i) t[i] = float(proj[9 + i]);
    const float fx = float(proj[12]), fy = float(proj[13]), cx = float(proj[14]), cy = float(proj[15]);
    const int64_t H = depth.size(0), W = depth.size(1);
    const float Wf = float(W), Hf = float(H), extent = float(block_extent);
    const float radius = float(0.8660254 * block_extent), eps = float(1e-6);
    const float lo_d = float(min_depth), hi_d = float(max_depth);
    for (int64_t s = 0; s < num_blocks; ++s) {
      if (active[size_t(s)]) continue;
      const float c0 = (float(bc[3 * s]) + 0.5f) * extent;
      const float c1 = (float(bc[3 * s + 1]) + 0.5f) * extent;
      const float c2 = (float(bc[3 * s + 2]) + 0.5f) * extent;
      const float z = R[6] * c0 + R[7] * c1 + R[8] * c2 + t[2];
      if (!(z > eps)) continue;
      const float x = R[0] * c0 + R[1] * c1 + R[2] * c2 + t[0];
      const float y = R[3] * c0 + R[4] * c1 + R[5] * c2 + t[1];
      const float u = round_even(fx * x / z + cx);
      const float v = round_even(fy * y / z + cy);
      if (!(u >= 0.f && u < Wf && v >= 0.f && v < Hf)) continue;
      const float d = dp[int64_t(v) * W + int64_t(u)];
      if (d > 0.f && d >= lo_d && d <= hi_d && z - radius < d) active[size_t(s)] = 1;
    }
  }
  std::vector<int64_t> result;
  result.reserve(size_t(total));
  for (int64_t s = 0; s < total; ++s)
    if (active[size_t(s)]) result.push_back(s);
  auto slots_out = torch::from_blob(result.data(), {int64_t(result.size())}, opts).clone();
  return {0, slots_out, new_coords, out_keys, out_slots};
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

namespace {

// One voxel's pending vote for its pixel's two most likely classes: the voxel's index in the
// storage (slot * V + voxel) and its observation weight.
struct ProbVote {
  int64_t voxel;
  int32_t pixel;
  float weight;
};

struct Fusion {
  float R[9], t[3], fx, fy, cx, cy, Wf, Hf, lo_d, hi_d, vs, trunc, neg_trunc, max_w, sem_max, dropoff_den;
  int32_t width;
  bool inverse_square, weight_dropoff;
  const int64_t* coord_ptr;
  at::Half* tsdf_ptr;
  at::Half* weight_ptr;
  uint8_t* color_ptr;
  uint8_t* label_ptr;
  at::Half* count_ptr;
  const float* depth_ptr;
  const uint8_t* rgb_ptr;
  const int64_t* lab_ptr;
  const float* lw_ptr;
  int64_t K;
  // per-class probabilities (H, W, C) with any element strides, float32 or uint8 (/ 255):
  // each updated voxel votes for its pixel's two most likely classes. The block pass only
  // lists those votes (see ProbVote); the top two of the pixels they name are computed
  // afterwards in memory order, and the votes applied from the list (fuse_probability_votes).
  const float* pf_ptr;
  const uint8_t* pu_ptr;
  int64_t ps_h, ps_w, ps_c, C;
  std::vector<ProbVote>* prob_votes;  // where this thread lists its votes
};

// Per-thread scratch for one block of V voxels.
template <int V>
struct Scratch {
  alignas(64) float z[V], sdf[V], d[V], told[V], wst[V], wold[V], w[V], wsum[V], out[V];
  alignas(64) int32_t pix[V];
  alignas(64) uint8_t upd[V];
};

template <int B>
bool fuse_block(const Fusion& f, int64_t slot, int64_t row, Scratch<B * B * B>& s) {
  constexpr int V = B * B * B;
  const int64_t bx = f.coord_ptr[3 * slot] * B, by = f.coord_ptr[3 * slot + 1] * B, bz = f.coord_ptr[3 * slot + 2] * B;
  float rx[3][B], ry[3][B], rz[3][B];  // R[r][c] * coordinate, per voxel row/column/layer
  for (int q = 0; q < B; ++q) {
    const float px = (float(bx + q) + 0.5f) * f.vs;
    const float py = (float(by + q) + 0.5f) * f.vs;
    const float pz = (float(bz + q) + 0.5f) * f.vs;
    for (int r = 0; r < 3; ++r) {
      rx[r][q] = f.R[3 * r] * px;
      ry[r][q] = f.R[3 * r + 1] * py;
      rz[r][q] = f.R[3 * r + 2] * pz;
    }
  }
  // pass 1: projection of every voxel (x fastest), nearest pixel, depth, sdf, update mask
  const float* dp = f.depth_ptr;
  int count = 0;
  for (int k = 0; k < B; ++k) {
    for (int j = 0; j < B; ++j) {
      const float a0 = ry[0][j], a1 = ry[1][j], a2 = ry[2][j];
      const float b0 = rz[0][k], b1 = rz[1][k], b2 = rz[2][k];
      float* zo = s.z + (k * B + j) * B;
      int32_t* po = s.pix + (k * B + j) * B;
      for (int i = 0; i < B; ++i) {
        const float z = rx[2][i] + a2 + b2 + f.t[2];
        const float xc = rx[0][i] + a0 + b0 + f.t[0];
        const float yc = rx[1][i] + a1 + b1 + f.t[1];
        const bool front = z > 0.f;
        const float sz = front ? z : 1.f;
        const float u = round_even(f.fx * xc / sz + f.cx);
        const float v = round_even(f.fy * yc / sz + f.cy);
        const bool inside = front && u >= 0.f && u < f.Wf && v >= 0.f && v < f.Hf;
        const int32_t iu = int32_t(inside ? u : -1.f), iv = int32_t(inside ? v : 0.f);
        zo[i] = z;
        po[i] = iv * f.width + iu;  // -1 outside the image
      }
    }
  }
  for (int n = 0; n < V; ++n) {
    const int32_t p = s.pix[n];
    const float raw = dp[p < 0 ? 0 : p];
    const float d = (p >= 0 && raw >= f.lo_d && raw <= f.hi_d) ? raw : 0.f;  // as clean_depth() does
    const float sdf = d - s.z[n];
    const bool upd = d > 0.f && sdf >= f.neg_trunc;
    s.d[n] = d;
    s.sdf[n] = sdf;
    s.upd[n] = upd;
    count += upd;
  }
  if (count == 0) return false;
  // pass 2: TSDF and weight of the whole block, kept where no update applies
  const int64_t base = row * V;  // storage row: the block's slot, or 0 in a private copy
  halves_to_floats(f.tsdf_ptr + base, s.told, V);
  halves_to_floats(f.weight_ptr + base, s.wst, V);
  bool any_predicted = false;
  for (int n = 0; n < V; ++n) {
    const float sdf = s.sdf[n], d = s.d[n];
    const bool predicted = s.wst[n] < 0.f;
    any_predicted |= predicted && s.upd[n];
    const float weight_old = predicted ? 0.f : s.wst[n];
    const float observation = std::min(sdf / f.trunc, 1.0f);
    float w = f.inverse_square ? 1.0f / (d * d) : 1.0f;
    if (f.weight_dropoff) w = sdf < -f.vs ? w * ((f.trunc + sdf) / f.dropoff_den) : w;
    const float weight_sum = weight_old + w;
    const float tsdf_new = (s.told[n] * weight_old + observation * w) / weight_sum;
    s.told[n] = s.upd[n] ? tsdf_new : s.told[n];
    s.out[n] = s.upd[n] ? std::min(weight_sum, f.max_w) : s.wst[n];
    s.wold[n] = weight_old;
    s.w[n] = w;
    s.wsum[n] = weight_sum;
  }
  floats_to_halves(s.told, reinterpret_cast<uint16_t*>(f.tsdf_ptr + base), V);
  floats_to_halves(s.out, reinterpret_cast<uint16_t*>(f.weight_ptr + base), V);
  if (f.rgb_ptr) {
    uint8_t* col = f.color_ptr + 3 * base;
    for (int n = 0; n < V; ++n) {
      if (!s.upd[n]) continue;
      const int64_t pixel = s.pix[n];
      const float wo = s.wold[n], w = s.w[n], ws = s.wsum[n];
      for (int c = 0; c < 3; ++c) {
        const float old = float(col[3 * n + c]);
        const float obs = float(f.rgb_ptr[3 * pixel + c]);
        float value = round_even((old * wo + obs * w) / ws);
        value = std::min(std::max(value, 0.f), 255.f);
        col[3 * n + c] = uint8_t(value);
      }
    }
  }
  if (f.prob_votes) {  // probabilities: list the votes; a predicted voxel's evidence restarts now
    const int64_t first = slot * V;
    for (int n = 0; n < V; ++n) {
      if (!s.upd[n]) continue;
      if (s.wst[n] < 0.f) {
        const int64_t idx = base + n;
        f.count_ptr[3 * idx] = float_to_half(0.f);
        f.count_ptr[3 * idx + 1] = float_to_half(0.f);
        f.count_ptr[3 * idx + 2] = float_to_half(0.f);
      }
      if (s.sdf[n] < f.trunc) f.prob_votes->push_back({first + n, s.pix[n], s.w[n]});
    }
    return true;
  }
  const bool has_sem = f.lab_ptr != nullptr;
  if (any_predicted || has_sem) {
    for (int n = 0; n < V; ++n) {
      if (!s.upd[n]) continue;
      const bool predicted = s.wst[n] < 0.f;
      if (!predicted && !has_sem) continue;
      const int64_t idx = base + n, pixel = s.pix[n];
      const float w = s.w[n];
      float c1 = half_to_float(f.count_ptr[3 * idx]), c2 = half_to_float(f.count_ptr[3 * idx + 1]), total = half_to_float(f.count_ptr[3 * idx + 2]);
      int64_t l1 = f.label_ptr[2 * idx], l2 = f.label_ptr[2 * idx + 1];
      if (predicted) { c1 = 0.f; c2 = 0.f; total = 0.f; }
      if (f.lab_ptr && s.sdf[n] < f.trunc) {
        for (int64_t q = 0; q < f.K; ++q) {
          const int64_t vote = f.lab_ptr[pixel * f.K + q];
          const float strength = f.lw_ptr ? w * f.lw_ptr[pixel * f.K + q] : w;
          const float vote_w = vote > 0 ? strength : 0.f;
          update_evidence(l1, l2, c1, c2, total, vote, vote_w, f.sem_max);
        }
      }
      f.label_ptr[2 * idx] = uint8_t(l1);
      f.label_ptr[2 * idx + 1] = uint8_t(l2);
      f.count_ptr[3 * idx] = float_to_half(c1);
      f.count_ptr[3 * idx + 1] = float_to_half(c2);
      f.count_ptr[3 * idx + 2] = float_to_half(total);
    }
  }
  return true;
}

// Blocks are spread over the calling thread and helper threads. Each block has a state:
// free -> (caller) owned -> done, or free -> (helper) working -> committing -> done. A helper
// fuses a private copy of its block and writes it back only if the caller has not taken the
// block over meanwhile; the caller, once the queue is empty, takes over every block a helper
// has not finished (a helper preempted by another process leaves no work behind), then closes
// the job and waits until no helper is inside a block, so nothing touches the tensors after
// the call; a helper that starts late finds the job closed.
enum : uint8_t { kFree = 0, kOwned = 1, kWorking = 2, kCommitting = 3, kDone = 4 };
constexpr int64_t kClosed = int64_t(1) << 40;

struct Job {
  Fusion f;
  int B = 8;
  int64_t M = 0, chunk = 1;
  std::atomic<int64_t> gate{0};  // helpers inside a block, plus kClosed once the caller is done
  const int64_t* slot_ptr = nullptr;
  std::unique_ptr<std::atomic<uint8_t>[]> state;
  std::unique_ptr<uint8_t[]> changed;
  std::atomic<int64_t> next{0};
  // probability votes of the blocks each helper committed (the caller lists its own in f)
  std::vector<std::vector<ProbVote>> helper_votes;
};

template <int B>
struct BlockCopy {  // one block's voxels, the layers of VoxelBlocks
  static constexpr int V = B * B * B;
  at::Half tsdf[V], weight[V], count[3 * V];
  uint8_t color[3 * V], label[2 * V];

  void load(const Fusion& f, int64_t slot) {
    std::copy_n(f.tsdf_ptr + slot * V, V, tsdf);
    std::copy_n(f.weight_ptr + slot * V, V, weight);
    std::copy_n(f.count_ptr + 3 * slot * V, 3 * V, count);
    std::copy_n(f.color_ptr + 3 * slot * V, 3 * V, color);
    std::copy_n(f.label_ptr + 2 * slot * V, 2 * V, label);
  }
  void store(const Fusion& f, int64_t slot) const {
    std::copy_n(tsdf, V, f.tsdf_ptr + slot * V);
    std::copy_n(weight, V, f.weight_ptr + slot * V);
    std::copy_n(count, 3 * V, f.count_ptr + 3 * slot * V);
    std::copy_n(color, 3 * V, f.color_ptr + 3 * slot * V);
    std::copy_n(label, 2 * V, f.label_ptr + 2 * slot * V);
  }
};

template <int B>
void caller_fuse(Job& job, int64_t b, Scratch<B * B * B>& scratch) {
  const int64_t slot = job.slot_ptr[b];
  job.changed[b] = fuse_block<B>(job.f, slot, slot, scratch);
  job.state[b].store(kDone, std::memory_order_release);
}

template <int B>
void helper_run(const std::shared_ptr<Job>& job, int helper) {
  auto scratch = std::make_unique<Scratch<B * B * B>>();
  auto copy = std::make_unique<BlockCopy<B>>();
  Fusion local = job->f;
  local.tsdf_ptr = copy->tsdf;
  local.weight_ptr = copy->weight;
  local.count_ptr = copy->count;
  local.color_ptr = copy->color;
  local.label_ptr = copy->label;
  std::vector<ProbVote> block_votes;  // the block's votes count only if its copy is committed
  if (job->f.prob_votes) local.prob_votes = &block_votes;
  for (;;) {
    const int64_t begin = job->next.fetch_add(job->chunk);
    if (begin >= job->M) return;
    const int64_t end = std::min(job->M, begin + job->chunk);
    for (int64_t b = begin; b < end; ++b) {
      if (job->gate.fetch_add(1) >= kClosed) {
        job->gate.fetch_sub(1);
        return;
      }
      uint8_t expected = kFree;
      if (job->state[b].compare_exchange_strong(expected, kWorking)) {
        const int64_t slot = job->slot_ptr[b];
        copy->load(job->f, slot);
        block_votes.clear();
        const bool any = fuse_block<B>(local, slot, 0, *scratch);
        expected = kWorking;
        if (job->state[b].compare_exchange_strong(expected, kCommitting)) {  // else taken over
          if (any) copy->store(job->f, slot);
          if (local.prob_votes) {
            auto& mine = job->helper_votes[size_t(helper)];
            mine.insert(mine.end(), block_votes.begin(), block_votes.end());
          }
          job->changed[b] = any;
          job->state[b].store(kDone, std::memory_order_release);
        }
      }
      job->gate.fetch_sub(1);
    }
  }
}

template <int B>
void caller_run(const std::shared_ptr<Job>& job, int helpers) {
  for (int h = 0; h < helpers; ++h) {
    try {
      std::thread([job, h] { helper_run<B>(job, h); }).detach();
    } catch (const std::system_error&) {
      break;  // no thread: the caller does the work
    }
  }
  Scratch<B * B * B> scratch;
  for (;;) {
    const int64_t begin = job->next.fetch_add(job->chunk);
    if (begin >= job->M) break;
    const int64_t end = std::min(job->M, begin + job->chunk);
    for (int64_t b = begin; b < end; ++b) {
      uint8_t expected = kFree;
      if (job->state[b].compare_exchange_strong(expected, kOwned)) caller_fuse<B>(*job, b, scratch);
    }
  }
  for (int64_t b = 0; b < job->M; ++b) {  // take over what helpers have not finished
    uint8_t seen = job->state[b].load(std::memory_order_acquire);
    while (seen == kFree || seen == kWorking) {
      if (job->state[b].compare_exchange_weak(seen, kOwned)) {
        caller_fuse<B>(*job, b, scratch);
        seen = kDone;
      }
    }
    while (job->state[b].load(std::memory_order_acquire) != kDone) std::this_thread::yield();
  }
  job->gate.fetch_add(kClosed);
  while (job->gate.load() != kClosed) std::this_thread::yield();
}

// The top two classes of every pixel that a vote names, in memory order with the next pixels'
// probabilities prefetched (so they stream in instead of being fetched pixel by pixel in the
// order of the voxels), then the two votes of every listed voxel; each voxel is listed at
// most once per frame.
struct TopTwo {
  float p1, p2;
  int32_t i1, i2;
};

struct ProbScratch {  // kept by each calling thread between frames
  std::vector<uint8_t> marked;
  std::vector<int32_t> pixels;
  std::vector<TopTwo> top;
  std::vector<ProbVote> votes;
};

ProbScratch& prob_scratch() {
  thread_local ProbScratch scratch;
  return scratch;
}

// A probability as top2_votes() in semantic_tsdf.py reads it: float32 clamped to [0, 1] with
// non-finite values counting as 0, uint8 / 255.
inline float probability(float v) { return std::isfinite(v) ? std::min(std::max(v, 0.f), 1.f) : 0.f; }
inline float probability(uint8_t v) { return float(v) / 255.f; }

// The two most likely classes of the C values at p, p + stride, ...; ties go to the lower
// class id (the first strictly greater value wins), without branches.
template <typename T>
inline TopTwo top_two(const T* p, int64_t stride, int64_t C) {
  float p1 = -1.f, p2 = -1.f;
  int32_t i1 = 0, i2 = 0;
  for (int32_t c = 0; c < int32_t(C); ++c) {
    const float v = probability(p[c * stride]);
    const bool first = v > p1;
    const bool second = !first && v > p2;
    p2 = first ? p1 : (second ? v : p2);
    i2 = first ? i1 : (second ? c : i2);
    p1 = first ? v : p1;
    i1 = first ? c : i1;
  }
  return {p1, p2, i1, i2};
}

#ifdef __AVX2__
inline __m256 broadcast_max(__m256 x) {
  x = _mm256_max_ps(x, _mm256_permute2f128_ps(x, x, 1));
  x = _mm256_max_ps(x, _mm256_shuffle_ps(x, x, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm256_max_ps(x, _mm256_shuffle_ps(x, x, _MM_SHUFFLE(2, 3, 0, 1)));
}

inline uint32_t equal_lanes(const __m256 (&x)[4], __m256 m) {
  uint32_t bits = 0;
  for (int q = 0; q < 4; ++q) bits |= uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(x[q], m, _CMP_EQ_OQ))) << (8 * q);
  return bits;
}

// top_two() of up to 32 probabilities (>= 0; the lanes past the classes hold -1), 8 at a time:
// the first lane holding the maximum, then the first other lane holding the maximum of the rest.
inline TopTwo top_two_of_lanes(__m256 (&x)[4]) {
  const __m256 m1 = broadcast_max(_mm256_max_ps(_mm256_max_ps(x[0], x[1]), _mm256_max_ps(x[2], x[3])));
  const int32_t i1 = __builtin_ctz(equal_lanes(x, m1));
  const __m256i first = _mm256_set1_epi32(i1);
  const __m256 none = _mm256_set1_ps(-1.f);
  for (int q = 0; q < 4; ++q) {
    const __m256i lane = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(8 * q));
    x[q] = _mm256_blendv_ps(x[q], none, _mm256_castsi256_ps(_mm256_cmpeq_epi32(lane, first)));
  }
  const __m256 m2 = broadcast_max(_mm256_max_ps(_mm256_max_ps(x[0], x[1]), _mm256_max_ps(x[2], x[3])));
  const float p2 = _mm256_cvtss_f32(m2);
  if (p2 < 0.f) return {_mm256_cvtss_f32(m1), -1.f, i1, 0};  // a single class
  return {_mm256_cvtss_f32(m1), p2, i1, int32_t(__builtin_ctz(equal_lanes(x, m2)))};
}
#endif

// top_two() of one pixel: with AVX2 and at most 32 classes, the values are read into lanes first
// (float32 gathered straight into registers, uint8 through the stack).
inline TopTwo pixel_top_two(const float* p, int64_t stride, int64_t C) {
#ifdef __AVX2__
  if (C <= 32 && std::abs(stride) * 32 < (int64_t(1) << 31)) {
    const __m256 none = _mm256_set1_ps(-1.f), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    const __m256 infinity = _mm256_set1_ps(std::numeric_limits<float>::infinity());
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 x[4];
    for (int q = 0; q < 4; ++q) {
      const __m256i cls = _mm256_add_epi32(lanes, _mm256_set1_epi32(8 * q));
      const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(C)), cls));
      const __m256i index = _mm256_mullo_epi32(cls, _mm256_set1_epi32(int32_t(stride)));
      const __m256 raw = stride == 1  // side by side: a masked load reads nothing past the classes
          ? _mm256_maskload_ps(p + 8 * q, _mm256_castps_si256(valid))
          : _mm256_mask_i32gather_ps(none, p, index, valid, 4);
      const __m256 finite = _mm256_cmp_ps(_mm256_and_ps(raw, magnitude), infinity, _CMP_LT_OQ);
      const __m256 clean = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(raw, zero), one), finite);
      x[q] = _mm256_blendv_ps(none, clean, valid);
    }
    return top_two_of_lanes(x);
  }
#endif
  return top_two(p, stride, C);
}

inline TopTwo pixel_top_two(const uint8_t* p, int64_t stride, int64_t C) {
#ifdef __AVX2__
  if (C <= 32) {
    alignas(32) float v[32];
    for (int q = 0; q < 4; ++q) _mm256_store_ps(v + 8 * q, _mm256_set1_ps(-1.f));
    for (int64_t c = 0; c < C; ++c) v[c] = probability(p[c * stride]);
    __m256 x[4];
    for (int q = 0; q < 4; ++q) x[q] = _mm256_load_ps(v + 8 * q);
    return top_two_of_lanes(x);
  }
#endif
  return top_two(p, stride, C);
}

#ifdef __AVX2__
// top_two() of a pixel's C <= 24 uint8 values side by side, read as three 8-byte loads (the
// caller makes sure 24 bytes can be read from p).
inline TopTwo packed_top_two(const uint8_t* p, int64_t C) {
  const __m256 none = _mm256_set1_ps(-1.f), scale = _mm256_set1_ps(255.f);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 x[4];
  for (int q = 0; q < 3; ++q) {
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * q)));
    const __m256i cls = _mm256_add_epi32(lanes, _mm256_set1_epi32(8 * q));
    const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(C)), cls));
    x[q] = _mm256_blendv_ps(none, _mm256_div_ps(_mm256_cvtepi32_ps(bytes), scale), valid);
  }
  x[3] = none;
  return top_two_of_lanes(x);
}
#endif

template <typename T>
void top_two_of_pixels(const Fusion& f, const T* data, const int32_t* pixels, int64_t begin, int64_t end,
                       int64_t count, TopTwo* top, int64_t extent) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));
  const bool packed = f.ps_c == 1;  // a pixel's classes side by side: a line or two per pixel
  // pixels prefetched ahead: class-major planes share a line between ~4 marked pixels
  const int64_t kAhead = packed ? 8 : 12;
  int64_t last_line = -1;
  auto prefetch = [&](int64_t pixel) {
    const int64_t h = pixel / f.width, w = pixel - h * f.width;
    const int64_t offset = h * f.ps_h + w * f.ps_w;
    const int64_t line = offset / kLine;
    if (line == last_line) return;  // the same lines as the pixel before (class-major rows)
    last_line = line;
    const T* a = data + offset;
    if (packed) {
      for (int64_t c = 0; c < f.C; c += kLine) __builtin_prefetch(a + c);
      __builtin_prefetch(a + f.C - 1);
    } else {
      for (int64_t c = 0; c < f.C; ++c) __builtin_prefetch(a + c * f.ps_c);
    }
  };
  for (int64_t i = begin; i < std::min(end, begin + kAhead); ++i) prefetch(pixels[i]);
  for (int64_t i = begin; i < end; ++i) {
    if (i + kAhead < count) prefetch(pixels[i + kAhead]);
    const int64_t pixel = pixels[i];
    const int64_t h = pixel / f.width, w = pixel - h * f.width;
    const int64_t offset = h * f.ps_h + w * f.ps_w;
#ifdef __AVX2__
    if constexpr (std::is_same<T, uint8_t>::value) {
      if (packed && f.C <= 24 && offset + 24 <= extent) {
        top[pixel] = packed_top_two(data + offset, f.C);
        continue;
      }
    }
#endif
    top[pixel] = pixel_top_two(data + offset, f.ps_c, f.C);
  }
}

#ifdef __AVX2__
inline __m256 load_probabilities(const float* p) {  // 8 values cleaned as probability() does
  const __m256 raw = _mm256_loadu_ps(p);
  const __m256 infinity = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256 finite = _mm256_cmp_ps(_mm256_and_ps(raw, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))), infinity, _CMP_LT_OQ);
  return _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(raw, _mm256_setzero_ps()), _mm256_set1_ps(1.f)), finite);
}

inline __m256 load_probabilities(const uint8_t* p) {
  const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_div_ps(_mm256_cvtepi32_ps(bytes), _mm256_set1_ps(255.f));
}

// Class-major probabilities whose planes are whole images (pixel p of class c at p + c * ps_c):
// the top two of 8 neighbouring pixels at a time, top_two()'s steps in registers, class after
// class, each plane read 32 contiguous bytes (or 8) at a time; only groups holding a marked
// pixel are read, the planes of the groups a few ahead prefetched. Returns the first pixel it
// did not cover (the rest go pixel by pixel).
template <typename T>
int64_t top_two_of_planes(const Fusion& f, const T* data, const uint8_t* marked, int64_t pixels, TopTwo* top,
                          std::vector<int32_t>& list) {
  const int64_t groups = pixels / 8;
  list.clear();
  for (int64_t g = 0; g < groups; ++g) {
    uint64_t eight;
    std::memcpy(&eight, marked + 8 * g, 8);
    if (eight != 0) list.push_back(int32_t(g));
  }
  const int64_t count = int64_t(list.size());
  at::parallel_for(0, count, 2048, [&](int64_t k0, int64_t k1) {
    constexpr int64_t kAhead = 4;  // groups prefetched ahead
    int64_t last_line = -1;
    auto prefetch = [&](int64_t g) {
      const int64_t line = 8 * g * int64_t(sizeof(T)) / 64;
      if (line == last_line) return;  // two float32 groups share each line of a plane
      last_line = line;
      for (int64_t c = 0; c < f.C; ++c) __builtin_prefetch(data + 8 * g + c * f.ps_c);
    };
    for (int64_t k = k0; k < std::min(k1, k0 + kAhead); ++k) prefetch(list[k]);
    for (int64_t k = k0; k < k1; ++k) {
      if (k + kAhead < k1) prefetch(list[k + kAhead]);
      const int64_t g = list[k];
      const T* p = data + 8 * g;
      __m256 p1 = _mm256_set1_ps(-1.f), p2 = p1;
      __m256 i1 = _mm256_setzero_ps(), i2 = i1;
      for (int32_t c = 0; c < int32_t(f.C); ++c) {
        const __m256 v = load_probabilities(p + c * f.ps_c);
        const __m256 cls = _mm256_castsi256_ps(_mm256_set1_epi32(c));
        const __m256 first = _mm256_cmp_ps(v, p1, _CMP_GT_OQ);
        const __m256 second = _mm256_andnot_ps(first, _mm256_cmp_ps(v, p2, _CMP_GT_OQ));
        p2 = _mm256_blendv_ps(_mm256_blendv_ps(p2, v, second), p1, first);
        i2 = _mm256_blendv_ps(_mm256_blendv_ps(i2, cls, second), i1, first);
        p1 = _mm256_blendv_ps(p1, v, first);
        i1 = _mm256_blendv_ps(i1, cls, first);
      }
      alignas(32) float prob1[8], prob2[8];
      alignas(32) int32_t class1[8], class2[8];
      _mm256_store_ps(prob1, p1); _mm256_store_ps(prob2, p2);
      _mm256_store_ps(reinterpret_cast<float*>(class1), i1); _mm256_store_ps(reinterpret_cast<float*>(class2), i2);
      for (int q = 0; q < 8; ++q) top[8 * g + q] = {prob1[q], prob2[q], class1[q], class2[q]};
    }
  });
  return 8 * groups;
}
#endif

void fuse_probability_votes(const Fusion& f, const std::vector<const std::vector<ProbVote>*>& lists,
                            int64_t pixels, ProbScratch& scratch) {
  scratch.marked.assign(size_t(pixels), 0);
  if (int64_t(scratch.top.size()) < pixels) scratch.top.resize(size_t(pixels));
  uint8_t* marked = scratch.marked.data();
  TopTwo* top = scratch.top.data();
  for (const auto* list : lists)
    for (const ProbVote& vote : *list) marked[vote.pixel] = 1;
  int64_t done = 0;  // pixels already covered
#ifdef __AVX2__
  if (f.ps_w == 1 && f.ps_h == f.width && f.ps_c >= pixels) {  // planes of whole images, class-major
    if (f.pf_ptr) done = top_two_of_planes(f, f.pf_ptr, marked, pixels, top, scratch.pixels);
    else done = top_two_of_planes(f, f.pu_ptr, marked, pixels, top, scratch.pixels);
  }
#endif
  auto& order = scratch.pixels;  // the marked pixels in memory order
  order.clear();
  for (int64_t p = done; p < pixels; ++p) {
    if ((p & 7) == 0 && p + 8 <= pixels) {  // skip eight unmarked pixels at a time
      uint64_t eight;
      std::memcpy(&eight, marked + p, 8);
      if (eight == 0) { p += 7; continue; }
    }
    if (marked[p]) order.push_back(int32_t(p));
  }
  const int64_t count = int64_t(order.size());
  // elements from the start of the probabilities to one past the last (strides are >= 0)
  const int64_t extent = (pixels / f.width - 1) * f.ps_h + (f.width - 1) * f.ps_w + (f.C - 1) * f.ps_c + 1;
  at::parallel_for(0, count, 8192, [&](int64_t begin, int64_t end) {
    if (f.pf_ptr) top_two_of_pixels(f, f.pf_ptr, order.data(), begin, end, count, top, extent);
    else top_two_of_pixels(f, f.pu_ptr, order.data(), begin, end, count, top, extent);
  });
  for (const auto* list : lists) {
    const ProbVote* votes = list->data();
    const int64_t n = int64_t(list->size());
    for (int64_t k = 0; k < n; ++k) {
      if (k + 16 < n) {  // the top two and the evidence of a vote a few ahead
        __builtin_prefetch(top + votes[k + 16].pixel);
        __builtin_prefetch(f.count_ptr + 3 * votes[k + 16].voxel, 1);
      }
      const ProbVote& vote = votes[k];
      const int64_t idx = vote.voxel;
      const TopTwo& t = top[vote.pixel];
      const float w = vote.weight;
      float c1 = half_to_float(f.count_ptr[3 * idx]), c2 = half_to_float(f.count_ptr[3 * idx + 1]);
      float total = half_to_float(f.count_ptr[3 * idx + 2]);
      int64_t l1 = f.label_ptr[2 * idx], l2 = f.label_ptr[2 * idx + 1];
      update_evidence(l1, l2, c1, c2, total, t.i1, t.i1 > 0 ? w * t.p1 : 0.f, f.sem_max);
      if (f.C > 1) update_evidence(l1, l2, c1, c2, total, t.i2, t.i2 > 0 ? w * t.p2 : 0.f, f.sem_max);
      f.label_ptr[2 * idx] = uint8_t(l1);
      f.label_ptr[2 * idx + 1] = uint8_t(l2);
      f.count_ptr[3 * idx] = float_to_half(c1);
      f.count_ptr[3 * idx + 1] = float_to_half(c2);
      f.count_ptr[3 * idx + 2] = float_to_half(total);
    }
  }
}

}  // namespace

// Fuse a frame into the voxels of `slots`; returns which of them changed and, when
// block_stamp is given, writes `stamp` into the stamp of every changed block.
torch::Tensor integrate_blocks(
    torch::Tensor tsdf, torch::Tensor weight, torch::Tensor color, torch::Tensor sem_label,
    torch::Tensor sem_count, torch::Tensor block_coords, torch::Tensor slots, torch::Tensor depth,
    c10::optional<torch::Tensor> rgb, c10::optional<torch::Tensor> sem_labels,
    c10::optional<torch::Tensor> sem_weights, std::vector<double> proj, int64_t width, int64_t height, double min_depth, double max_depth,
    double voxel_size, int64_t block_size, double truncation, double max_weight, bool inverse_square,
    double semantic_max_weight, bool weight_dropoff, c10::optional<torch::Tensor> block_stamp, int64_t stamp,
    c10::optional<torch::Tensor> sem_probs) {
  TORCH_CHECK(proj.size() == 16, "projection must have 16 entries");
  TORCH_CHECK(tsdf.is_contiguous() && weight.is_contiguous() && color.is_contiguous() &&
                  sem_label.is_contiguous() && sem_count.is_contiguous() && depth.is_contiguous(),
              "tensors must be contiguous");
  TORCH_CHECK(width * height < (int64_t(1) << 31), "image too large");
  const int64_t M = slots.numel();
  const int64_t B = block_size;
  TORCH_CHECK(B == 4 || B == 8 || B == 16, "block_size must be 4, 8 or 16");
  auto changed = torch::zeros({M}, torch::TensorOptions().dtype(torch::kBool));
  if (M == 0) return changed;
  auto slots_c = slots.contiguous();
  const int64_t* slot_ptr = slots_c.data_ptr<int64_t>();
  auto coords_c = block_coords.contiguous();
  Fusion f;
  f.coord_ptr = coords_c.data_ptr<int64_t>();
  f.tsdf_ptr = tsdf.data_ptr<at::Half>();
  f.weight_ptr = weight.data_ptr<at::Half>();
  f.color_ptr = color.data_ptr<uint8_t>();
  f.label_ptr = sem_label.data_ptr<uint8_t>();
  f.count_ptr = sem_count.data_ptr<at::Half>();
  f.depth_ptr = depth.data_ptr<float>();
  torch::Tensor rgb_c, lab_c, lw_c;
  f.rgb_ptr = nullptr;
  f.lab_ptr = nullptr;
  f.lw_ptr = nullptr;
  f.K = 0;
  if (rgb.has_value()) { rgb_c = rgb->contiguous(); f.rgb_ptr = rgb_c.data_ptr<uint8_t>(); }
  if (sem_labels.has_value()) {
    lab_c = sem_labels->to(torch::kInt64).contiguous();
    f.lab_ptr = lab_c.data_ptr<int64_t>();
    f.K = lab_c.size(-1);
    if (sem_weights.has_value()) { lw_c = sem_weights->to(torch::kFloat32).contiguous(); f.lw_ptr = lw_c.data_ptr<float>(); }
  }
  f.pf_ptr = nullptr;
  f.pu_ptr = nullptr;
  f.ps_h = f.ps_w = f.ps_c = f.C = 0;
  f.prob_votes = nullptr;
  if (sem_probs.has_value()) {  // read in place, whatever its strides (HWC or class-major CHW)
    const auto& probs = *sem_probs;
    TORCH_CHECK(probs.dim() == 3 && probs.size(0) == height && probs.size(1) == width,
                "probabilities must be (height, width, classes)");
    TORCH_CHECK(probs.scalar_type() == torch::kFloat32 || probs.scalar_type() == torch::kUInt8,
                "probabilities must be float32 or uint8");
    if (probs.scalar_type() == torch::kFloat32) f.pf_ptr = probs.data_ptr<float>();
    else f.pu_ptr = probs.data_ptr<uint8_t>();
    f.ps_h = probs.stride(0); f.ps_w = probs.stride(1); f.ps_c = probs.stride(2); f.C = probs.size(2);
    TORCH_CHECK(sem_labels.has_value() == false, "give either label votes or probabilities, not both");
    prob_scratch().votes.clear();
    f.prob_votes = &prob_scratch().votes;
  }
  bool* changed_ptr = changed.data_ptr<bool>();
  for (int i = 0; i < 9; ++i) f.R[i] = float(proj[i]);
  for (int i = 0; i < 3; ++i) f.t[i] = float(proj[9 + i]);
  f.fx = float(proj[12]); f.fy = float(proj[13]); f.cx = float(proj[14]); f.cy = float(proj[15]);
  f.vs = float(voxel_size); f.trunc = float(truncation); f.neg_trunc = float(-truncation);
  f.max_w = float(max_weight); f.sem_max = float(semantic_max_weight);
  f.dropoff_den = float(truncation - voxel_size);
  f.Wf = float(width); f.Hf = float(height);
  f.width = int32_t(width);
  f.lo_d = float(min_depth); f.hi_d = float(max_depth);
  f.inverse_square = inverse_square;
  f.weight_dropoff = weight_dropoff;

  // Helper threads only pay off for enough blocks; small chunks balance a busy CPU.
  auto job = std::make_shared<Job>();
  job->f = f;
  job->B = int(B);
  job->M = M;
  job->chunk = std::max<int64_t>(1, (int64_t(1) << 12) / (B * B * B));
  job->slot_ptr = slot_ptr;
  job->state.reset(new std::atomic<uint8_t>[size_t(M)]);
  for (int64_t b = 0; b < M; ++b) job->state[b].store(kFree, std::memory_order_relaxed);
  job->changed.reset(new uint8_t[size_t(M)]());
  const int64_t voxels = M * B * B * B;
  const int helpers = voxels >= (int64_t(1) << 15) ? int(std::min<int64_t>(kernel_threads(), M / job->chunk)) - 1 : 0;
  if (f.prob_votes) job->helper_votes.resize(size_t(std::max(helpers, 0)));
  if (B == 8) caller_run<8>(job, helpers);
  else if (B == 4) caller_run<4>(job, helpers);
  else caller_run<16>(job, helpers);
  if (f.prob_votes) {  // every block is fused and no helper touches the job any more
    std::vector<const std::vector<ProbVote>*> lists{f.prob_votes};
    for (const auto& list : job->helper_votes) lists.push_back(&list);
    fuse_probability_votes(f, lists, width * height, prob_scratch());
  }
  for (int64_t b = 0; b < M; ++b) changed_ptr[b] = job->changed[b] != 0;
  if (block_stamp.has_value()) {
    TORCH_CHECK(block_stamp->is_contiguous() && block_stamp->scalar_type() == torch::kInt64, "block_stamp must be contiguous int64");
    int64_t* st = block_stamp->data_ptr<int64_t>();
    for (int64_t b = 0; b < M; ++b)
      if (changed_ptr[b]) st[slot_ptr[b]] = stamp;
  }
  return changed;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // The kernels work on tensors their callers keep alive and touch no Python object, so they
  // let other Python threads (publishers, services, completion) run while they compute.
  m.def("prepare_frame", &prepare_frame, "clean depth, count valid pixels, list touched blocks",
        py::call_guard<py::gil_scoped_release>());
  m.def("plan_frame", &plan_frame, "touched blocks, hash insertion and space carving of one frame",
        py::call_guard<py::gil_scoped_release>());
  m.def("integrate_blocks", &integrate_blocks, "fuse a frame into the voxels of the given blocks",
        py::call_guard<py::gil_scoped_release>(),
        py::arg("tsdf"), py::arg("weight"), py::arg("color"), py::arg("sem_label"), py::arg("sem_count"),
        py::arg("block_coords"), py::arg("slots"), py::arg("depth"), py::arg("rgb"), py::arg("sem_labels"),
        py::arg("sem_weights"), py::arg("proj"), py::arg("width"), py::arg("height"), py::arg("min_depth"),
        py::arg("max_depth"), py::arg("voxel_size"), py::arg("block_size"), py::arg("truncation"),
        py::arg("max_weight"), py::arg("inverse_square"), py::arg("semantic_max_weight"),
        py::arg("weight_dropoff"), py::arg("block_stamp") = py::none(), py::arg("stamp") = 0,
        py::arg("sem_probs") = py::none());
}

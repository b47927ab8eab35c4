// One-pass CPU kernel of the quadrotor hover step (rpm actions): delayed action, physics substeps, rewards,
// terminations, interval due-masks, noisy delayed observations and the critic state, for W envs at a time in vector
// registers (GCC vector extensions): W = 16 (AVX-512, zmm) where the compiler targets AVX-512F, else W = 8 (AVX2,
// ymm); -DSIM2REAL_KERNEL_WIDTH=8 or 16 picks one. Every lane computes the same operations in the same order, so
// both widths give bit-identical results (tested). The torch implementation in env.py is the reference; this file
// must compute the same function (checked in tests/sim/quadrotor/test_native.py). Built and loaded by native.py.
#include <immintrin.h>

#include <cstdint>
#include <cmath>
#include <cstring>
#include <ctime>
#include <omp.h>

#ifndef SIM2REAL_KERNEL_WIDTH
#ifdef __AVX512F__
#define SIM2REAL_KERNEL_WIDTH 16
#else
#define SIM2REAL_KERNEL_WIDTH 8
#endif
#endif
#if SIM2REAL_KERNEL_WIDTH == 16 && !defined(__AVX512F__)
#error "SIM2REAL_KERNEL_WIDTH=16 needs AVX-512F (-march=native on a CPU with AVX-512)"
#elif SIM2REAL_KERNEL_WIDTH != 8 && SIM2REAL_KERNEL_WIDTH != 16
#error "SIM2REAL_KERNEL_WIDTH must be 8 or 16"
#endif
constexpr int W = SIM2REAL_KERNEL_WIDTH;  // envs per block (float lanes of one vector)
typedef float vf __attribute__((vector_size(4 * W)));
typedef int32_t vi __attribute__((vector_size(4 * W)));
#if SIM2REAL_KERNEL_WIDTH == 16
static inline vf vsqrt(vf a) { return (vf)_mm512_sqrt_ps((__m512)a); }
static inline vf vround(vf a) {
  return (vf)_mm512_roundscale_ps((__m512)a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline void vstream(float* p, vf v) { _mm512_stream_ps(p, (__m512)v); }
#else
static inline vf vsqrt(vf a) { return (vf)_mm256_sqrt_ps((__m256)a); }
static inline vf vround(vf a) {
  return (vf)_mm256_round_ps((__m256)a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline void vstream(float* p, vf v) { _mm256_stream_ps(p, (__m256)v); }
#endif
constexpr int MAX_SLOTS = 8;
constexpr int MAX_DUE = 4;
constexpr int SENSED = 18;
constexpr float GROUND_MIN_H = 0.03f;  // m, sim.quadrotor.dynamics.GROUND_MIN_H

// Every field is 8 bytes wide so that the ctypes mirror in native.py has no padding questions.
struct Args {
  int64_t n, stride, pstride, num_threads, substeps, act_slots, obs_slots, n_due, max_len, table_rows, counter;
  int64_t env_stride, step_stride;
  int64_t row_mass, row_jx, row_jy, row_jz, row_kf, row_km, row_tau_up, row_tau_down, row_dx, row_dy, row_dz,
      row_max_rpm, row_act_lat, row_obs_lat, row_noise_scale, row_fx, row_fy, row_fz, row_tx, row_ty, row_tz;
  // The vehicle's imperfections (sim.quadrotor.dynamics.Imperfections): per-rotor kf and time-constant factors,
  // thrust curve, battery sag, ground effect, centre-of-mass offset (x, y).
  int64_t row_ks1, row_ks2, row_ks3, row_ks4, row_ts1, row_ts2, row_ts3, row_ts4, row_curve, row_sag, row_ground,
      row_comx, row_comy, row_sub_lat;  // row_sub_lat: sim.quadrotor.config.SUBSTEP_LATENCY
  int64_t row_std[SENSED];
  int64_t due_period[MAX_DUE];
  double dt, arm, gravity, control_dt, ref_height, nominal_max_rpm;
  double offset[4], scale[4], low[4];
  double w_alive, w_pos, w_vel, w_ang, w_tilt, w_act, w_rate, w_term;
  double lim_pos, lim_speed, lim_rate, floor;
  double policy_scale[SENSED + 4 + 3];
  double critic_scale[SENSED];
  float* state;
  float* params;
  const float* actions;
  float* act_slot[MAX_SLOTS];  // slot 0 = previous step's action (4, n) ... slot S-1 = oldest
  float* act_new;              // (4, n), receives this step's clean action; observe reads the last action here
  float* act_prev;             // (4, n), the previous step's action (for the action-rate penalty)
  float* obs_slot[MAX_SLOTS];  // slot 0 = previous step's sensed (18, n)
  float* obs_new;              // (18, n)
  int64_t* ep_len;
  float* ep_return;
  float* reward;
  uint8_t* terminated;
  uint8_t* timeout;
  uint8_t* done;
  uint8_t* due[MAX_DUE];
  float* obs_out;  // (policy base rows, n): the newest block of the history window (see n_hist)
  const float* noise_table;
  int64_t n_integral;  // 3 when the policy observes position_error_integral (after last_action), else 0
  double integral_limit;  // m s, sim.obs_terms.POSITION_ERROR_INTEGRAL_LIMIT
  float* integral_prev;  // (3, n) the integral after the previous step (zeroed for envs reset in the pass)
  float* integral_new;  // (3, n) receives this step's integral
  // Resets of the envs that finished, done by quad_step itself (reset_inline = 1) from the env's pre-drawn reset
  // pool, in the order of the torch path: the k-th finished env (ascending index) takes pool column pool_next + k.
  int64_t reset_inline, pool_next, pool_left, pool_pstride, pool_sstride, nprow, n_act_buf, npriv;
  const float* pool_params;  // (nprow, pool_pstride) parameter draws, rows prow
  const float* pool_state;   // (13, pool_sstride) state offsets: position, velocity, quaternion, body rates
  const int64_t* prow;
  float* act_buf[MAX_SLOTS];  // every action delay-line buffer (zeroed at reset)
  float* priv;                // (n, npriv) privileged observations, or nullptr (refreshed by the caller)
  const int64_t* priv_row;
  const float* priv_div;
  const float* priv_mul;
  int64_t* chunk_count;  // (n / CHUNK rounded up) scratch: finished envs per chunk, then each chunk's first ordinal
  int64_t* counts;       // out: [0] finished envs, [1] 1 if they were reset here, [2 + d] envs due in group d
  int64_t* done_ids;     // out (n): the finished envs, ascending ...
  float* done_return;    // ... their episode return, length and failure flag before the reset
  int64_t* done_len;
  uint8_t* done_term;
  // Observation history (the policy observes [base_t, base_t-1, ..., base_t-K]): obs_out is the newest of K + 1
  // consecutive base blocks (rows D * k .. D * k + D - 1 hold base_t-k, D = SENSED + 4 + n_integral) of one of the
  // env's two history rings (native.py, NativeStep.advance_outputs), so the history costs no copy. The base is also
  // written to obs_mirror, the same block of the other ring (which holds the last step's window). A new episode
  // has its first base observation in all K older blocks (as QuadrotorEnv._append_history): an env reset in the
  // pass gets them in this ring at once (n_hist), and in the other ring at the next step (prev_done), when that
  // ring's window is no longer the one the caller may still read.
  float* critic_out;        // (22 critic rows, n)
  int64_t n_hist;           // K
  float* obs_mirror;        // (D, n) or nullptr (K = 0)
  const uint8_t* prev_done;  // (n) the envs reset in the last step, or nullptr: fill block 1 into blocks 2..K
  // The kernel's own timers (or nullptr): quad_step adds the wall seconds of its physics pass to [0] and of its
  // observation pass (with the in-pass resets) to [1], each from the step's start or the first pass's last chunk.
  double* pass_seconds;
};

// Lanes of one block: env indices (contiguous or gathered) and how many are valid; lanes past ``cnt`` repeat the
// last valid index (loaded, never stored).
struct Lanes {
  int64_t idx[W];
  int cnt;
  bool contig;
  inline vf load(const float* row) const {
    vf v;
    if (contig && cnt == W) {
      std::memcpy(&v, row + idx[0], sizeof(vf));
    } else {
#if SIM2REAL_KERNEL_WIDTH == 16
      // Two 8-lane gathers (the lanes' indices are int64): ~3x fewer instructions than 16 element inserts.
      const __m256 lo = _mm512_i64gather_ps(_mm512_loadu_si512(idx), row, 4);
      const __m256 hi = _mm512_i64gather_ps(_mm512_loadu_si512(idx + 8), row, 4);
      v = (vf)_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
#else
      for (int l = 0; l < W; ++l) v[l] = row[idx[l]];
#endif
    }
    return v;
  }
  inline void store(float* row, vf v) const {
    if (contig && cnt == W) {
      std::memcpy(row + idx[0], &v, sizeof(vf));
    } else {
#if SIM2REAL_KERNEL_WIDTH == 16
      // Two masked 8-lane scatters of the valid lanes (distinct envs, so the order of the writes does not matter).
      const __m512 x = (__m512)v;
      const __mmask8 mlo = cnt >= 8 ? 0xFF : (__mmask8)((1u << cnt) - 1);
      const __mmask8 mhi = cnt >= 16 ? 0xFF : cnt > 8 ? (__mmask8)((1u << (cnt - 8)) - 1) : 0;
      _mm512_mask_i64scatter_ps(row, mlo, _mm512_loadu_si512(idx), _mm512_castps512_ps256(x), 4);
      if (mhi)
        _mm512_mask_i64scatter_ps(row, mhi, _mm512_loadu_si512(idx + 8),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)), 4);
#else
      for (int l = 0; l < cnt; ++l) row[idx[l]] = v[l];
#endif
    }
  }
  // Store of an output written once per step and not read back by the kernel. With 16 envs per block, a streaming
  // store (no read for ownership) of a whole 64-byte line; needs a row address aligned to the vector (blocks start
  // at multiples of 16 envs of 64-byte aligned rows). With 8 (AVX2) a streaming store fills half a line, and a
  // plain store was faster: on an AMD EPYC Zen 3 (2 vCPUs, the pass timers of sim_throughput.py, alternated) the
  // observation pass took 7-29 % less time than with streaming stores, and less than with pairs of blocks
  // streaming whole lines together (docs/ARCHITECTURE.md, "Simulator").
  inline void stream(float* row, vf v) const {
    if (contig && cnt == W) {
      if (W == 16)
        vstream(row + idx[0], v);
      else
        std::memcpy(row + idx[0], &v, sizeof(vf));
    } else {
      store(row, v);
    }
  }
  inline void store_mask(uint8_t* row, vi m) const {
    for (int l = 0; l < cnt; ++l) row[idx[l]] = m[l] != 0;
  }
};

static inline vf vmin(vf a, vf b) { return a < b ? a : b; }
static inline vf vmax(vf a, vf b) { return a > b ? a : b; }
static inline vf splat(double x) { return vf{} + (float)x; }
static inline vi isfinite_mask(vf x) { return (x - x) == 0.0f; }

// exp(x) for x <= 0, Cephes-style range reduction (relative error ~1e-7); -expm1(x) = 1 - exp(x) below.
static inline vf vexp_neg(vf x) {
  x = vmax(x, splat(-87.0));
  vf fx = x * 1.44269504088896341f;
  vf k = vround(fx);
  vf r = x - k * 0.693359375f + k * 2.12194440e-4f;
  vf r2 = r * r;
  vf p = splat(1.9875691500E-4);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r2 + r + 1.0f;
  vi e = (__builtin_convertvector(k, vi) + 127) << 23;
  vf scale;
  std::memcpy(&scale, &e, sizeof(vf));
  return p * scale;
}

// -expm1(x) for x <= 0: a short series near 0 (where 1 - exp(x) cancels), 1 - exp(x) elsewhere.
static inline vf neg_expm1(vf x) {
  vf series = -x * (1.0f + x * (0.5f + x * (1.0f / 6.0f + x * (1.0f / 24.0f + x * (1.0f / 120.0f)))));
  return (x > -0.03f) ? series : 1.0f - vexp_neg(x);
}

struct State {
  vf px, py, pz, vx, vy, vz, qw, qx, qy, qz, wx, wy, wz, r1, r2, r3, r4;
};

static inline State load_state(const Args& a, const Lanes& L) {
  const float* s = a.state;
  const int64_t n = a.stride;  // row stride of the state, delay lines and outputs
  return State{L.load(s), L.load(s + n), L.load(s + 2 * n), L.load(s + 3 * n), L.load(s + 4 * n),
               L.load(s + 5 * n), L.load(s + 6 * n), L.load(s + 7 * n), L.load(s + 8 * n), L.load(s + 9 * n),
               L.load(s + 10 * n), L.load(s + 11 * n), L.load(s + 12 * n), L.load(s + 13 * n),
               L.load(s + 14 * n), L.load(s + 15 * n), L.load(s + 16 * n)};
}

static inline void store_state(const Args& a, const Lanes& L, const State& b) {
  float* s = a.state;
  const int64_t n = a.stride;  // row stride of the state, delay lines and outputs
  const vf rows[17] = {b.px, b.py, b.pz, b.vx, b.vy, b.vz, b.qw, b.qx, b.qy,
                       b.qz, b.wx, b.wy, b.wz, b.r1, b.r2, b.r3, b.r4};
  for (int k = 0; k < 17; ++k) L.store(s + k * n, rows[k]);
}

static inline void rotation(const State& b, vf R[9]) {
  vf xx = b.qx * b.qx, yy = b.qy * b.qy, zz = b.qz * b.qz;
  vf xy = b.qx * b.qy, xz = b.qx * b.qz, yz = b.qy * b.qz;
  vf wx = b.qw * b.qx, wy = b.qw * b.qy, wz = b.qw * b.qz;
  R[0] = 1.0f - 2.0f * (yy + zz);
  R[1] = 2.0f * (xy - wz);
  R[2] = 2.0f * (xz + wy);
  R[3] = 2.0f * (xy + wz);
  R[4] = 1.0f - 2.0f * (xx + zz);
  R[5] = 2.0f * (yz - wx);
  R[6] = 2.0f * (xz - wy);
  R[7] = 2.0f * (yz + wx);
  R[8] = 1.0f - 2.0f * (xx + yy);
}

// Rows of the noise table read at this step: env e reads (e * A + counter * B + e // K) mod K, as
// sim.rng.table_normal. Walking envs in order needs no division: the row advances by A (plus 1 when e // K does).
struct NoiseRows {
  int64_t K, A, rem, row;
  NoiseRows(const Args& a, int64_t env) : K(a.table_rows), A(a.env_stride % a.table_rows) {
    const int64_t c = (a.counter % K) * (a.step_stride % K) % K;
    rem = env % K;
    row = (rem * A % K + c + env / K % K) % K;
  }
  inline void next() {
    row += A;
    if (++rem == K) rem = 0, ++row;
    while (row >= K) row -= K;
  }
};

static inline const float* noise_row(const Args& a, int64_t env) { return a.noise_table + NoiseRows(a, env).row * SENSED; }

// The 18 noise values of the W lanes' table rows src[l], as 18 vectors: noise[j][l] = src[l][j]. Columns 0-15 by
// register transposes of 8 rows x 8 columns (element inserts cost ~3x more), columns 16-17 by inserts.
#if SIM2REAL_KERNEL_WIDTH == 16
// out[j][l] = src[l][col + j], j < 8: rows l and l + 8 share a zmm register (one in each 256-bit half), the 8x8
// transpose runs in both halves at once, and one two-source permute per column puts the 16 lanes in order.
static inline void transpose16x8(const float* const src[W], int col, vf out[8]) {
  __m512 r[8];
  for (int k = 0; k < 8; ++k) {  // (insertf64x4: AVX-512F alone, unlike insertf32x8)
    const __m512d low = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(src[k] + col)));
    r[k] = _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(src[k + 8] + col)), 1));
  }
  __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
  __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
  __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
  __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
  __m512 u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE);
  __m512 u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE);
  // Low 128 bits of each 256-bit half (columns 0-3), then the high ones (columns 4-7).
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  out[0] = (vf)_mm512_permutex2var_ps(u0, lo, u4);
  out[1] = (vf)_mm512_permutex2var_ps(u1, lo, u5);
  out[2] = (vf)_mm512_permutex2var_ps(u2, lo, u6);
  out[3] = (vf)_mm512_permutex2var_ps(u3, lo, u7);
  out[4] = (vf)_mm512_permutex2var_ps(u0, hi, u4);
  out[5] = (vf)_mm512_permutex2var_ps(u1, hi, u5);
  out[6] = (vf)_mm512_permutex2var_ps(u2, hi, u6);
  out[7] = (vf)_mm512_permutex2var_ps(u3, hi, u7);
}

static inline void gather_noise(const float* const src[W], vf noise[SENSED]) {
  transpose16x8(src, 0, noise);
  transpose16x8(src, 8, noise + 8);
  for (int l = 0; l < W; ++l) noise[16][l] = src[l][16], noise[17][l] = src[l][17];
}
#else
// out[j][l] = src[l][col + j] for j < 8.
static inline void transpose8(const float* const src[W], int col, vf out[8]) {
  __m256 r0 = _mm256_loadu_ps(src[0] + col), r1 = _mm256_loadu_ps(src[1] + col);
  __m256 r2 = _mm256_loadu_ps(src[2] + col), r3 = _mm256_loadu_ps(src[3] + col);
  __m256 r4 = _mm256_loadu_ps(src[4] + col), r5 = _mm256_loadu_ps(src[5] + col);
  __m256 r6 = _mm256_loadu_ps(src[6] + col), r7 = _mm256_loadu_ps(src[7] + col);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  out[0] = (vf)_mm256_permute2f128_ps(u0, u4, 0x20);
  out[1] = (vf)_mm256_permute2f128_ps(u1, u5, 0x20);
  out[2] = (vf)_mm256_permute2f128_ps(u2, u6, 0x20);
  out[3] = (vf)_mm256_permute2f128_ps(u3, u7, 0x20);
  out[4] = (vf)_mm256_permute2f128_ps(u0, u4, 0x31);
  out[5] = (vf)_mm256_permute2f128_ps(u1, u5, 0x31);
  out[6] = (vf)_mm256_permute2f128_ps(u2, u6, 0x31);
  out[7] = (vf)_mm256_permute2f128_ps(u3, u7, 0x31);
}

static inline void gather_noise(const float* const src[W], vf noise[SENSED]) {
  transpose8(src, 0, noise);
  transpose8(src, 8, noise + 8);
  for (int l = 0; l < W; ++l) noise[16][l] = src[l][16], noise[17][l] = src[l][17];
}
#endif

// A base observation row into this step's history block and its mirror in the other ring (see Args::n_hist).
// fill: lanes (bit l: lane l) whose value also goes into the K older blocks of the window (a new episode: every
// block holds its first observation).
static inline void base_out(const Args& a, const Lanes& L, int64_t offset, vf v, uint32_t fill) {
  L.stream(a.obs_out + offset, v);
  if (a.obs_mirror) L.stream(a.obs_mirror + offset, v);
  if (fill) {
    const int64_t block = (SENSED + 4 + a.n_integral) * a.stride;
    if (!L.contig && fill == (1u << L.cnt) - 1) {
      for (int64_t k = 1; k <= a.n_hist; ++k) L.store(a.obs_out + k * block + offset, v);
    } else {
      for (int l = 0; l < L.cnt; ++l)
        if (fill >> l & 1)
          for (int64_t k = 1; k <= a.n_hist; ++k) a.obs_out[k * block + offset + L.idx[l]] = v[l];
    }
  }
}

// Noisy sensed values, delay, and the 44 observation rows of the envs in L (state b, after any reset).
// rows: the noise table rows of the lanes (nullptr: computed here, with divisions).
// last_act: the lanes' newest action when already in registers (else loaded from act_new).
// Always inlined: left to the compiler, the inlining (and with it which products fuse into FMAs) differed between
// the two widths, and their results with it (by an ulp, in a few envs).
static __attribute__((always_inline)) inline void observe(const Args& a, const Lanes& L, const State& b,
                                                         const int64_t* rows = nullptr, const vf* last_act = nullptr,
                                                         uint32_t fill = 0) {
  const int64_t n = a.stride;  // row stride of the state, delay lines and outputs
  const float* P = a.params;
  vf R[9];
  rotation(b, R);
  vf truth[SENSED] = {b.px, b.py, b.pz - (float)a.ref_height, R[0], R[1], R[2], R[3], R[4], R[5], R[6], R[7], R[8],
                      b.vx, b.vy, b.vz, b.wx, b.wy, b.wz};
  // Noise rows: (env * A + counter * B + env // K) mod K, as sim.rng.table_normal.
  vf noise[SENSED];
  const float* src[W];
  for (int l = 0; l < W; ++l) src[l] = rows ? a.noise_table + rows[l] * SENSED : noise_row(a, L.idx[l]);
  gather_noise(src, noise);
  vf noise_scale = L.load(P + a.row_noise_scale * a.pstride);
  vf sensed[SENSED];
  for (int j = 0; j < SENSED; ++j) {
    vf std = L.load(P + a.row_std[j] * a.pstride) * noise_scale;
    sensed[j] = truth[j] + noise[j] * std;
    L.stream(a.obs_new + j * n, sensed[j]);  // read back only at the next step
  }
  vf len;
  for (int l = 0; l < W; ++l) len[l] = (float)a.ep_len[L.idx[l]];
  vf delay = vmin(L.load(P + a.row_obs_lat * a.pstride), len);
  const int S = (int)a.obs_slots;  // delay line [sensed, slot 0, ..., slot S-2]
  vf observed_error[3];
  for (int j = 0; j < SENSED; ++j) {
    vf out = S >= 2 ? L.load(a.obs_slot[S - 2] + j * n) : sensed[j];
    for (int k = S - 2; k >= 0; --k) {
      vf v = k == 0 ? sensed[j] : L.load(a.obs_slot[k - 1] + j * n);
      out = (delay == (float)k) ? v : out;
    }
    if (j < 3) observed_error[j] = out;
    float s = (float)a.policy_scale[j];
    base_out(a, L, j * n, s != 1.0f ? out * s : out, fill);
  }
  for (int m = 0; m < 4; ++m) {
    vf last = last_act ? last_act[m] : L.load(a.act_new + m * n);  // the newest action (after a reset: zero)
    float s = (float)a.policy_scale[SENSED + m];
    base_out(a, L, (SENSED + m) * n, s != 1.0f ? last * s : last, fill);
  }
  // position_error_integral (sim.obs_terms.integrate_position_error): read from the previous step's buffer, so
  // observing an env twice in one step (after a reset) gives the same result.
  const float lim = (float)a.integral_limit;
  for (int k = 0; k < (int)a.n_integral; ++k) {
    vf v = L.load(a.integral_prev + k * n) + observed_error[k] * (float)a.control_dt;
    v = vmin(vmax(v, splat(-lim)), splat(lim));
    L.stream(a.integral_new + k * n, v);  // read back only at the next step
    float s = (float)a.policy_scale[SENSED + 4 + k];
    base_out(a, L, (SENSED + 4 + k) * n, s != 1.0f ? v * s : v, fill);
  }
  float* critic = a.critic_out;
  for (int j = 0; j < SENSED; ++j) {
    float s = (float)a.critic_scale[j];
    L.stream(critic + j * n, s != 1.0f ? truth[j] * s : truth[j]);
  }
  const vf rotors[4] = {b.r1, b.r2, b.r3, b.r4};
  for (int m = 0; m < 4; ++m) L.stream(critic + (SENSED + m) * n, rotors[m] / (float)a.nominal_max_rpm);
}

static inline void euler_rate(vf wx, vf wy, vf wz, vf tx, vf ty, vf tz, vf jx, vf jy, vf jz, vf ijx, vf ijy,
                              vf ijz, vf out[3]) {
  vf hx = jx * wx, hy = jy * wy, hz = jz * wz;
  out[0] = (tx - (wy * hz - wz * hy)) * ijx;
  out[1] = (ty - (wz * hx - wx * hz)) * ijy;
  out[2] = (tz - (wx * hy - wy * hx)) * ijz;
}

static void step_block(const Args& a, const Lanes& L) {
  const int64_t n = a.stride;  // row stride of the state, delay lines and outputs
  const float* P = a.params;
  auto prm = [&](int64_t row) { return L.load(P + row * a.pstride); };
  // Clean action (non-finite -> hover command, clip to [-1, 1]) and the delayed one.
  vf act[4], applied[4];
  for (int m = 0; m < 4; ++m) {
    vf x;
    for (int l = 0; l < W; ++l) x[l] = a.actions[L.idx[l] * 4 + m];
    x = (x != x) ? splat(0.0) : x;
    act[m] = vmin(vmax(x, splat(-1.0)), splat(1.0));
    L.stream(a.act_new + m * n, act[m]);
  }
  vf lat = prm(a.row_act_lat), lat_prev = lat + 1.0f;
  const int S = (int)a.act_slots;  // delay line [action, slot 0, ..., slot S-2]
  vf previous[4];  // the previous step's applied action (the first sub_lat substeps still run it)
  for (int m = 0; m < 4; ++m) {
    vf out = S >= 2 ? L.load(a.act_slot[S - 2] + m * n) : act[m], out_prev = out;
    for (int k = S - 2; k >= 0; --k) {
      vf v = k == 0 ? act[m] : L.load(a.act_slot[k - 1] + m * n);
      out = (lat == (float)k) ? v : out;
      out_prev = (lat_prev == (float)k) ? v : out_prev;
    }
    applied[m] = out;
    previous[m] = out_prev;
  }
  vf sub_lat = prm(a.row_sub_lat);
  vf mass = prm(a.row_mass), jx = prm(a.row_jx), jy = prm(a.row_jy), jz = prm(a.row_jz);
  vf kf = prm(a.row_kf), km = prm(a.row_km), dxc = prm(a.row_dx), dyc = prm(a.row_dy), dzc = prm(a.row_dz);
  vf max_rpm = prm(a.row_max_rpm);
  vf fwx = prm(a.row_fx), fwy = prm(a.row_fy), fwz = prm(a.row_fz);
  vf tbx = prm(a.row_tx), tby = prm(a.row_ty), tbz = prm(a.row_tz);
  const float dt = (float)a.dt;
  const int64_t row_ks[4] = {a.row_ks1, a.row_ks2, a.row_ks3, a.row_ks4};
  const int64_t row_ts[4] = {a.row_ts1, a.row_ts2, a.row_ts3, a.row_ts4};
  vf tau_up = prm(a.row_tau_up), tau_down = prm(a.row_tau_down);
  vf alpha_up[4], alpha_down[4], ks[4];
  for (int m = 0; m < 4; ++m) {
    vf ts = prm(row_ts[m]);
    alpha_up[m] = neg_expm1(-dt / (tau_up * ts));
    alpha_down[m] = neg_expm1(-dt / (tau_down * ts));
    ks[m] = prm(row_ks[m]);
  }
  vf curve = prm(a.row_curve), ground = prm(a.row_ground), comx = prm(a.row_comx), comy = prm(a.row_comy);
  vf one_minus_sag = 1.0f - prm(a.row_sag), lin = curve * (float)a.nominal_max_rpm, quad = 1.0f - curve;
  vf inv_m = 1.0f / mass, ijx = 1.0f / jx, ijy = 1.0f / jy, ijz = 1.0f / jz;
  vf cmd_now[4], cmd_before[4];
  for (int m = 0; m < 4; ++m) {
    const float off = (float)a.offset[m], sc = (float)a.scale[m];
    cmd_now[m] = vmin(vmax(off + sc * applied[m], splat(a.low[m])), max_rpm) * one_minus_sag;
    cmd_before[m] = vmin(vmax(off + sc * previous[m], splat(a.low[m])), max_rpm) * one_minus_sag;
  }
  const vf arm = splat(a.arm) * (float)(1.0 / 1.4142135623730951);
  const float rpm_to_rad = (float)(2.0 * 3.141592653589793 / 60.0);
  const float g = (float)a.gravity, h = 0.5f * dt;
  State b = load_state(a, L);
  for (int sub = 0; sub < a.substeps; ++sub) {
    vf r[4] = {b.r1, b.r2, b.r3, b.r4};
    vi held = sub_lat > (float)sub;
    for (int m = 0; m < 4; ++m) {
      vf cmd = held ? cmd_before[m] : cmd_now[m];
      r[m] = r[m] + (cmd - r[m]) * ((cmd > r[m]) ? alpha_up[m] : alpha_down[m]);
    }
    vf h_ge = vmax(b.pz - (float)a.floor, splat(GROUND_MIN_H));
    vf k = kf * (1.0f + ground / (16.0f * h_ge * h_ge));
    vf f[4];
    for (int m = 0; m < 4; ++m) f[m] = vmax(k * ks[m] * r[m] * (quad * r[m] + lin), splat(0.0));
    vf f1 = f[0], f2 = f[1], f3 = f[2], f4 = f[3];
    vf thrust = f1 + f2 + f3 + f4;
    vf tx = arm * (-f1 - f2 + f3 + f4) - comy * thrust, ty = arm * (-f1 + f2 + f3 - f4) + comx * thrust;
    vf tz = km * (f1 - f2 + f3 - f4);
    vf R[9];
    rotation(b, R);
    vf vbx = R[0] * b.vx + R[3] * b.vy + R[6] * b.vz;
    vf vby = R[1] * b.vx + R[4] * b.vy + R[7] * b.vz;
    vf vbz = R[2] * b.vx + R[5] * b.vy + R[8] * b.vz;
    vf spin = (r[0] + r[1] + r[2] + r[3]) * rpm_to_rad;
    vf fbx = -dxc * spin * vbx, fby = -dyc * spin * vby, fbz = thrust - dzc * spin * vbz;
    vf ax = (R[0] * fbx + R[1] * fby + R[2] * fbz + fwx) * inv_m;
    vf ay = (R[3] * fbx + R[4] * fby + R[5] * fbz + fwy) * inv_m;
    vf az = (R[6] * fbx + R[7] * fby + R[8] * fbz + fwz) * inv_m - g;
    vf vx = b.vx + ax * dt, vy = b.vy + ay * dt, vz = b.vz + az * dt;
    vf px = b.px + 0.5f * (b.vx + vx) * dt, py = b.py + 0.5f * (b.vy + vy) * dt, pz = b.pz + 0.5f * (b.vz + vz) * dt;
    tx = tx + tbx;
    ty = ty + tby;
    tz = tz + tbz;
    vf k1[3], k2[3];
    euler_rate(b.wx, b.wy, b.wz, tx, ty, tz, jx, jy, jz, ijx, ijy, ijz, k1);
    euler_rate(b.wx + h * k1[0], b.wy + h * k1[1], b.wz + h * k1[2], tx, ty, tz, jx, jy, jz, ijx, ijy, ijz, k2);
    vf wx = b.wx + dt * k2[0], wy = b.wy + dt * k2[1], wz = b.wz + dt * k2[2];
    vf mx = 0.5f * (b.wx + wx), my = 0.5f * (b.wy + wy), mz = 0.5f * (b.wz + wz);
    vf h2 = (0.25f * dt * dt) * (mx * mx + my * my + mz * mz);
    vf c = 1.0f - h2 * (0.5f - h2 * (1.0f / 24.0f));
    vf s = (0.5f * dt) * (1.0f - h2 * (1.0f / 6.0f - h2 * (1.0f / 120.0f)));
    vf ex = s * mx, ey = s * my, ez = s * mz;
    vf qw = b.qw * c - b.qx * ex - b.qy * ey - b.qz * ez;
    vf qx = b.qw * ex + b.qx * c + b.qy * ez - b.qz * ey;
    vf qy = b.qw * ey - b.qx * ez + b.qy * c + b.qz * ex;
    vf qz = b.qw * ez + b.qx * ey - b.qy * ex + b.qz * c;
    vf inv_n = 1.0f / vsqrt(qw * qw + qx * qx + qy * qy + qz * qz);
    b = State{px, py, pz, vx, vy, vz, qw * inv_n, qx * inv_n, qy * inv_n, qz * inv_n, wx, wy, wz, r[0], r[1], r[2], r[3]};
  }
  store_state(a, L, b);

  // Rewards and terminations (hover: the reference is the fixed point (0, 0, ref_height), at rest).
  int64_t len_i[W];
  for (int l = 0; l < W; ++l) len_i[l] = a.ep_len[L.idx[l]] + 1;
  vf ex = b.px, ey = b.py, ez = b.pz - (float)a.ref_height;
  vf pos_l2 = ex * ex + ey * ey + ez * ez;
  vf vel_l2 = b.vx * b.vx + b.vy * b.vy + b.vz * b.vz;
  vf ang_l2 = b.wx * b.wx + b.wy * b.wy + b.wz * b.wz;
  vf rot_zz = 1.0f - 2.0f * (b.qx * b.qx + b.qy * b.qy);
  vf act_l2 = act[0] * act[0] + act[1] * act[1] + act[2] * act[2] + act[3] * act[3];
  vf d[4];
  for (int m = 0; m < 4; ++m) d[m] = act[m] - L.load(a.act_prev + m * n);
  // One expression (not a sum built in a loop): how a loop is unrolled may differ between the widths, and with it
  // which products the compiler fuses into FMAs (the widths' results must stay bit-identical).
  vf rate_l2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + d[3] * d[3];
  vf penalty = (float)a.w_pos * vsqrt(pos_l2) + (float)a.w_vel * vel_l2 + (float)a.w_ang * ang_l2 +
               (float)a.w_tilt * (1.0f - rot_zz) + (float)a.w_act * act_l2 + (float)a.w_rate * rate_l2;
  vf rew = (float)a.w_alive * vexp_neg(-penalty);  // alive * exp(-penalty): terms.alive_exp
  const float pl = (float)a.lim_pos, sl = (float)a.lim_speed, rl = (float)a.lim_rate;
  vi bad = (ex > pl) | (ex < -pl) | (ey > pl) | (ey < -pl) | (ez > pl) | (ez < -pl);
  bad = bad | (vel_l2 > sl * sl) | (ang_l2 > rl * rl) | (b.pz < (float)a.floor);
  bad = bad | ~isfinite_mask((ex + ey + ez) + (b.vx + b.vy + b.vz) + (b.wx + b.wy + b.wz));
  // nan_to_num(nan=0): NaN -> 0, +-inf -> +-float max.
  rew = (rew != rew) ? splat(0.0) : rew;
  rew = vmin(vmax(rew, splat(-3.4028234663852886e38)), splat(3.4028234663852886e38));
  rew = (bad != 0 ? splat(-a.w_term) : rew) * (float)a.control_dt;
  L.store(a.reward, rew);
  vf ret = L.load(a.ep_return) + rew;
  L.store(a.ep_return, ret);
  for (int l = 0; l < L.cnt; ++l) {
    int64_t e = L.idx[l];
    bool term = bad[l] != 0;
    bool tout = len_i[l] >= a.max_len && !term;
    a.ep_len[e] = len_i[l];
    a.terminated[e] = term;
    a.timeout[e] = tout;
    a.done[e] = term || tout;
    for (int d = 0; d < a.n_due; ++d) a.due[d][e] = (len_i[l] % a.due_period[d] == 0) && !(term || tout);
  }
}

// With ~150 rows touched per block, the hardware prefetchers lose track of the streams; prefetch the cache line
// of every row that env ``i`` will touch (one call per 16 envs, i.e. per cache line of a float row).
static inline void prefetch_rows(const Args& a, int64_t i, bool advance) {
  if (i >= a.n) return;
  const int64_t n = a.stride;
  auto rd = [](const void* p) { __builtin_prefetch(p, 0, 3); };
  auto wr = [](const void* p) { __builtin_prefetch(p, 1, 3); };
  for (int k = 0; k < 17; ++k) {
    if (advance)
      wr(a.state + k * n + i);
    else
      rd(a.state + k * n + i);
  }
  const int64_t prow[] = {a.row_mass, a.row_jx, a.row_jy, a.row_jz, a.row_kf, a.row_km, a.row_tau_up,
                          a.row_tau_down, a.row_dx, a.row_dy, a.row_dz, a.row_max_rpm, a.row_act_lat,
                          a.row_fx, a.row_fy, a.row_fz, a.row_tx, a.row_ty, a.row_tz, a.row_ks1, a.row_ks2,
                          a.row_ks3, a.row_ks4, a.row_ts1, a.row_ts2, a.row_ts3, a.row_ts4, a.row_curve,
                          a.row_sag, a.row_ground, a.row_comx, a.row_comy, a.row_sub_lat};
  if (advance) {
    for (int64_t r : prow) rd(a.params + r * a.pstride + i);
    for (int k = 0; k < 4; ++k) rd(a.actions + 4 * i + 16 * k);
    for (int s = 0; s + 1 < a.act_slots; ++s)
      for (int m = 0; m < 4; ++m) rd(a.act_slot[s] + m * n + i);
    for (int m = 0; m < 4; ++m) rd(a.act_prev + m * n + i);  // act_new and obs_new: streaming stores
    wr(a.ep_len + i);
    wr(a.ep_len + i + 8);
    wr(a.ep_return + i);
    wr(a.reward + i);
    return;  // the observation rows: in the observation pass
  }
  rd(a.ep_len + i);
  rd(a.ep_len + i + 8);
  for (int m = 0; m < 4; ++m) rd(a.act_new + m * n + i);
  rd(a.params + a.row_noise_scale * a.pstride + i);
  rd(a.params + a.row_obs_lat * a.pstride + i);
  for (int j = 0; j < SENSED; j += 3) rd(a.params + a.row_std[j] * a.pstride + i);
  for (int s = 0; s + 1 < a.obs_slots; ++s)
    for (int j = 0; j < SENSED; ++j) rd(a.obs_slot[s] + j * n + i);
  for (int k = 0; k < a.n_integral; ++k) rd(a.integral_prev + k * n + i);  // integral_new: streaming stores
}


// The history lines of the envs in [i, i + 16) reset in the last step (fill_history_of_last_resets rewrites them):
// ~75 scattered lines per such env, which the row prefetches above do not cover.
static inline void prefetch_last_resets(const Args& a, int64_t i) {
  const int64_t n = a.stride, d = SENSED + 4 + a.n_integral;
  const int64_t end = i + 16 < a.n ? i + 16 : a.n;
  for (int64_t e = i; e < end; ++e) {
    if (!a.prev_done[e]) continue;
    for (int64_t j = 0; j < d; ++j) __builtin_prefetch(a.obs_out + (d + j) * n + e, 0, 3);
    for (int64_t k = 2; k <= a.n_hist; ++k)
      for (int64_t j = 0; j < d; ++j) __builtin_prefetch(a.obs_out + (k * d + j) * n + e, 1, 3);
  }
}

// The envs of L reset in the last step: their first base observation (block 1 of this window) into blocks 2..K.
static inline void fill_history_of_last_resets(const Args& a, const Lanes& L) {
  const int64_t n = a.stride, d = SENSED + 4 + a.n_integral;
  for (int l = 0; l < L.cnt; ++l) {
    const int64_t e = L.idx[l];
    if (!a.prev_done[e]) continue;
    for (int64_t k = 2; k <= a.n_hist; ++k)
      for (int64_t j = 0; j < d; ++j) a.obs_out[(k * d + j) * n + e] = a.obs_out[(d + j) * n + e];
  }
}

constexpr int64_t CHUNK = 2048;  // envs per unit of work handed to a thread

// New episode for env e, as QuadrotorEnv._reset_idx: parameter rows prow[k] get pv[k * pv_stride], the state is
// the hover reference plus the offsets sv[k * sv_stride] (position, velocity, quaternion, body rates) with rotors at
// the env's hover speed sqrt(m g / (4 kf)); action delay lines and episode buffers are zeroed; privileged
// observations (when priv is set) are rewritten: priv[e, c] = params[priv_row[c], e] / priv_div[c] * priv_mul[c].
struct ResetSource {
  const int64_t* prow;
  int64_t nprow;
  const float* pv;  // column of env e in the parameter draws
  int64_t pv_stride;
  const float* sv;  // column of env e in the state offsets
  int64_t sv_stride;
  float* const* act;
  int64_t nact;
  float* priv;
  int64_t npriv;
  const int64_t* priv_row;
  const float* priv_div;
  const float* priv_mul;
};

static inline void reset_env(const Args& a, int64_t e, const ResetSource& r) {
  const int64_t n = a.stride, ps = a.pstride;
  const float g = (float)a.gravity, h = (float)a.ref_height;
  for (int64_t k = 0; k < r.nprow; ++k) a.params[r.prow[k] * ps + e] = r.pv[k * r.pv_stride];
  const float* o = r.sv;
  const int64_t sv = r.sv_stride;
  a.state[0 * n + e] = 0.0f + o[0 * sv];
  a.state[1 * n + e] = 0.0f + o[1 * sv];
  a.state[2 * n + e] = h + o[2 * sv];
  for (int k = 3; k < 6; ++k) a.state[k * n + e] = 0.0f + o[k * sv];
  for (int k = 6; k < 13; ++k) a.state[k * n + e] = o[k * sv];
  const float hover = std::sqrt(a.params[a.row_mass * ps + e] * g / (4.0f * a.params[a.row_kf * ps + e]));
  for (int k = 13; k < 17; ++k) a.state[k * n + e] = hover;
  for (int64_t s = 0; s < r.nact; ++s)
    for (int m = 0; m < 4; ++m) r.act[s][m * n + e] = 0.0f;
  a.ep_len[e] = 0;
  a.ep_return[e] = 0.0f;
  for (int64_t c = 0; c < r.npriv; ++c)
    r.priv[e * r.npriv + c] = a.params[r.priv_row[c] * ps + e] / r.priv_div[c] * r.priv_mul[c];
}

// The lines that resetting env e touches (reset_env, the observation rewrite, the history fill): ~200 scattered lines
// of as many rows, which no hardware prefetcher follows; issued a few envs ahead so that their misses overlap.
static inline void prefetch_reset(const Args& a, int64_t e) {
  const int64_t n = a.stride, ps = a.pstride, d = SENSED + 4 + a.n_integral;
  auto rd = [](const void* p) { __builtin_prefetch(p, 0, 3); };
  auto wr = [](const void* p) { __builtin_prefetch(p, 1, 3); };
  for (int k = 0; k < 17; ++k) wr(a.state + k * n + e);
  for (int64_t k = 0; k < a.nprow; ++k) wr(a.params + a.prow[k] * ps + e);
  for (int64_t s = 0; s < a.n_act_buf; ++s)
    for (int m = 0; m < 4; ++m) wr(a.act_buf[s] + m * n + e);
  for (int64_t r = 0; r < (a.n_hist + 1) * d; ++r) wr(a.obs_out + r * n + e);
  if (a.obs_mirror)
    for (int64_t j = 0; j < d; ++j) wr(a.obs_mirror + j * n + e);
  for (int j = 0; j < SENSED + 4; ++j) wr(a.critic_out + j * n + e);
  for (int j = 0; j < SENSED; ++j) wr(a.obs_new + j * n + e);
  for (int s = 0; s + 1 < a.obs_slots; ++s)
    for (int j = 0; j < SENSED; ++j) rd(a.obs_slot[s] + j * n + e);
  for (int k = 0; k < a.n_integral; ++k) wr(a.integral_prev + k * n + e), wr(a.integral_new + k * n + e);
  rd(a.params + a.row_noise_scale * ps + e);
  rd(a.params + a.row_obs_lat * ps + e);
  for (int j = 0; j < SENSED; j += 3) rd(a.params + a.row_std[j] * ps + e);
  if (a.priv) wr(a.priv + e * a.npriv);
}

// Resets of chunk c after its observations were written (quad_reset_done: the step found the pool short; the step
// itself resets in its observation pass, see run_range_body): each finished env is logged into the done_* outputs,
// reset from pool column pool_next + its ordinal, its position-error integral restarts from zero, and its
// observations are rewritten (W envs at a time), so the step returns the fresh episodes' first observations.
static void reset_chunk(const Args& a, int64_t c) {
  const int64_t begin = c * CHUNK, end = begin + CHUNK < a.n ? begin + CHUNK : a.n;
  const int64_t n = a.stride;
  int64_t k = a.chunk_count[c];
  ResetSource r{a.prow,   a.nprow, nullptr,    a.pool_pstride, nullptr,     a.pool_sstride, a.act_buf,
                a.n_act_buf, a.priv, a.npriv, a.priv_row,     a.priv_div, a.priv_mul};
  Lanes L;
  L.contig = false;
  L.cnt = 0;
  auto flush = [&]() {
    if (L.cnt == 0) return;
    for (int l = L.cnt; l < W; ++l) L.idx[l] = L.idx[L.cnt - 1];
    observe(a, L, load_state(a, L), nullptr, nullptr, (1u << L.cnt) - 1);  // and its history blocks
    L.cnt = 0;
  };
  int64_t ids[CHUNK];
  int64_t count = 0;
  for (int64_t e = begin; e < end; ++e) ids[count] = e, count += a.done[e] != 0;
  constexpr int64_t PF = 2;  // envs ahead: each touches ~200 scattered lines
  for (int64_t q = 0; q < PF && q < count; ++q) prefetch_reset(a, ids[q]);
  for (int64_t q = 0; q < count; ++q) {
    if (q + PF < count) prefetch_reset(a, ids[q + PF]);
    const int64_t e = ids[q];
    a.done_ids[k] = e;
    a.done_return[k] = a.ep_return[e];
    a.done_len[k] = a.ep_len[e];
    a.done_term[k] = a.terminated[e];
    const int64_t col = a.pool_next + k;
    r.pv = a.nprow ? a.pool_params + col : nullptr;
    r.sv = a.pool_state + col;
    reset_env(a, e, r);
    for (int j = 0; j < (int)a.n_integral; ++j) a.integral_prev[j * n + e] = 0.0f;
    L.idx[L.cnt++] = e;
    ++k;
    if (L.cnt == W) flush();
  }
  flush();
}

static void reset_chunk_flushed(const Args& a, int64_t c) {
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);  // flush denormals, as run_range
  reset_chunk(a, c);
  _mm_setcsr(csr);
}

// The passes over a range of envs: PHYSICS (delayed action, substeps, rewards, terminations, flags), then, once the
// finished envs of every chunk are counted, OBSERVE_STEP (with ``resets`` >= 0: each finished env of the range, the
// k-th from ordinal ``resets`` on, is reset from pool column pool_next + k first, so that its block is observed once,
// in order; also the history of the last step's resets), or OBSERVE (observations only, quad_observe).
enum Pass { PHYSICS, OBSERVE_STEP, OBSERVE };

static void run_range_body(const Args& a, int64_t begin, int64_t end, Pass pass, int64_t resets) {
  if (begin >= end) return;
  Lanes L;
  L.contig = true;
  const bool advance = pass == PHYSICS;
  // envs ahead (cache lines of each row x 16): the observation pass does less work per line than the physics
  const int64_t AHEAD = advance ? 64 : 128;
  constexpr int64_t NOISE_AHEAD = 32;  // envs; the noise rows are a scattered gather (both lines prefetched)
  NoiseRows cur(a, begin), ahead(a, begin);
  auto prefetch_noise = [&]() {
    const char* p = (const char*)(a.noise_table + ahead.row * SENSED);
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + SENSED * sizeof(float) - 1, 0, 3);
    ahead.next();
  };
  const bool last_resets = pass == OBSERVE_STEP && a.prev_done && a.n_hist > 1;
  int64_t fetched = begin;
  for (int64_t i = begin; i < begin + AHEAD && i < end; i += 16) prefetch_rows(a, i, advance);
  if (!advance)
    for (; fetched < begin + NOISE_AHEAD && fetched < end; ++fetched) prefetch_noise();
  ResetSource r{a.prow,   a.nprow, nullptr,    a.pool_pstride, nullptr,     a.pool_sstride, a.act_buf,
                a.n_act_buf, a.priv, a.npriv, a.priv_row,     a.priv_div, a.priv_mul};
  const int64_t n = a.stride;
  int64_t rows[W];
  for (int64_t i = begin; i < end; i += W) {
    L.cnt = (int)(end - i < W ? end - i : W);
    for (int l = 0; l < W; ++l) L.idx[l] = i + (l < L.cnt ? l : L.cnt - 1);
    if (i % 16 == 0 && i + AHEAD < end) {
      prefetch_rows(a, i + AHEAD, advance);
      if (last_resets) prefetch_last_resets(a, i + AHEAD);
    }
    if (advance) {
      step_block(a, L);
      continue;
    }
    for (int64_t stop = i + W + NOISE_AHEAD; fetched < stop && fetched < end; ++fetched) prefetch_noise();
    for (int l = 0; l < W; ++l) {
      rows[l] = cur.row;
      if (l + 1 < L.cnt) cur.next();
    }
    cur.next();
    uint32_t fill = 0;
    if (resets >= 0) {
      for (int l = 0; l < L.cnt; ++l) {
        const int64_t e = L.idx[l];
        if (!a.done[e]) continue;
        const int64_t k = resets++;
        a.done_ids[k] = e;
        a.done_return[k] = a.ep_return[e];
        a.done_len[k] = a.ep_len[e];
        a.done_term[k] = a.terminated[e];
        r.pv = a.nprow ? a.pool_params + a.pool_next + k : nullptr;
        r.sv = a.pool_state + a.pool_next + k;
        reset_env(a, e, r);
        for (int j = 0; j < (int)a.n_integral; ++j) a.integral_prev[j * n + e] = 0.0f;
        fill |= 1u << l;
      }
    }
    observe(a, L, load_state(a, L), rows, nullptr, fill);
    if (last_resets) fill_history_of_last_resets(a, L);
  }
}

// Denormal floats (values decaying towards zero: rotor-speed errors, body rates of a vehicle at rest) cost ~100x
// on x86; flush them to zero (FTZ + DAZ) while the kernel runs, then restore the caller's MXCSR. Measured with
// zero actions at 65536 envs: the kernel took 3.1 ms per step against 2.5 ms with random actions.
static void run_range(const Args& a, int64_t begin, int64_t end, Pass pass, int64_t resets = -1) {
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);
  run_range_body(a, begin, end, pass, resets);
  _mm_setcsr(csr);
}

// Finished and due envs of chunk c (counted right after the chunk stepped, while its flags are in cache).
static void count_chunk(const Args& a, int64_t c, int64_t begin, int64_t end) {
  int64_t done = 0;
  for (int64_t e = begin; e < end; ++e) done += a.done[e];
  a.chunk_count[c] = done;
  for (int d = 0; d < a.n_due; ++d) {
    int64_t due = 0;
    for (int64_t e = begin; e < end; ++e) due += a.due[d][e];
    if (due) __atomic_fetch_add(&a.counts[2 + d], due, __ATOMIC_RELAXED);
  }
}

// Turn the per-chunk counts into each chunk's first ordinal; the total into counts[0].
static inline int64_t num_chunks(const Args& a) { return (a.n + CHUNK - 1) / CHUNK; }

static int64_t chunk_offsets(const Args& a) {
  int64_t total = 0;
  for (int64_t c = 0; c < num_chunks(a); ++c) {
    const int64_t t = a.chunk_count[c];
    a.chunk_count[c] = total;
    total += t;
  }
  a.counts[0] = total;
  return total;
}

static inline bool chunk_has_done(const Args& a, int64_t c) {
  const int64_t next = c + 1 < num_chunks(a) ? a.chunk_count[c + 1] : a.counts[0];
  return next > a.chunk_count[c];
}

static int64_t thread_count(const Args& a) {
  const int64_t chunks = num_chunks(a);
  return a.num_threads < 1 ? 1 : (a.num_threads > chunks ? chunks : a.num_threads);
}

// CLOCK_MONOTONIC seconds, for the pass timers (Args::pass_seconds).
static inline double wall_seconds() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// OpenMP, not std::thread: the library links the libgomp that torch has already loaded, so the kernel runs on
// torch's own worker threads. Separate threads oversubscribed 2 cores while torch's workers spin after each op
// (measured 75 ms per step instead of ~5). Chunks of 2048 envs are handed out dynamically, so a thread that the OS
// preempts (a shared machine) delays the step by at most one chunk. A step (advance) is two loops of one parallel
// region: the physics of every chunk (counting its finished envs), then the observations of every chunk, in which,
// with reset_inline and enough draws in the pool, each finished env is reset just before its block is observed
// (else the caller refills the pool and calls quad_reset_done). Resetting in the observation pass writes a reset
// env's first observation once, with its block, instead of re-observing it alone after the pass (~300 scattered
// one-float accesses per reset env, 34 % of a one-thread profile at 65536 envs with random actions).
static void run_parallel(const Args& a, bool advance) {
  const int64_t chunks = num_chunks(a);
  const bool timed = advance && a.pass_seconds;
  const double start = timed ? wall_seconds() : 0.0;
  double physics_end = start;
  if (advance) {
    for (int d = 0; d < a.n_due; ++d) a.counts[2 + d] = 0;
    a.counts[0] = a.counts[1] = 0;
  }
  bool reset_here = false;
#pragma omp parallel num_threads(thread_count(a))
  {
    if (advance) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t end = (c + 1) * CHUNK < a.n ? (c + 1) * CHUNK : a.n;
        run_range(a, c * CHUNK, end, PHYSICS);
        count_chunk(a, c, c * CHUNK, end);
        _mm_sfence();  // the streamed actions visible before another thread observes this chunk
      }
#pragma omp single
      {
        if (timed) physics_end = wall_seconds();  // after the physics loop's barrier: every chunk stepped
        const int64_t total = chunk_offsets(a);
        reset_here = a.reset_inline && total > 0 && total <= a.pool_left;
        a.counts[1] = reset_here;
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t end = (c + 1) * CHUNK < a.n ? (c + 1) * CHUNK : a.n;
      const bool resets = reset_here && chunk_has_done(a, c);
      run_range(a, c * CHUNK, end, advance ? OBSERVE_STEP : OBSERVE, resets ? a.chunk_count[c] : -1);
    }
  }
  _mm_sfence();
  if (timed) {
    a.pass_seconds[0] += physics_end - start;
    a.pass_seconds[1] += wall_seconds() - physics_end;
  }
}

// Reset scatter for the eager reset path (QuadrotorEnv._reset_idx): new episodes for envs ids[0..count), column i
// of pvals / svals for env ids[i]. One call instead of ~15 eager ops.
struct ResetArgs {
  int64_t count, nprow, pv_stride, sv_stride, nact;
  const int64_t* ids;
  const int64_t* prow;  // parameter rows of pvals
  const float* pvals;   // (nprow, pv_stride): column i is env ids[i]
  const float* svals;   // (13, sv_stride): position, velocity offsets, quaternion, body rates
  float* act[MAX_SLOTS];
  float* priv;  // (n, npriv) row-major privileged observations; column c = params[priv_row[c]] / div[c] * mul[c]
  int64_t npriv;
  const int64_t* priv_row;
  const float* priv_div;
  const float* priv_mul;
};

extern "C" {
void quad_reset(const Args* ap, const ResetArgs* r) {
  ResetSource src{r->prow, r->nprow, nullptr, r->pv_stride, nullptr, r->sv_stride, r->act,
                  r->nact, r->priv, r->npriv, r->priv_row, r->priv_div, r->priv_mul};
  for (int64_t i = 0; i < r->count; ++i) {
    src.pv = r->nprow ? r->pvals + i : nullptr;
    src.sv = r->svals + i;
    reset_env(*ap, r->ids[i], src);
  }
}

// rows x n floats from src to dst (row stride ``stride`` floats, rows 64-byte aligned), on ``threads`` threads with
// streaming stores: the history ring's wrap-around copy (native.py, NativeStep.advance_outputs), ~20 MB at 65536
// envs, which as a torch copy ran on the one thread of the step's eager ops.
void quad_copy_rows(float* dst, const float* src, int64_t rows, int64_t n, int64_t stride, int64_t threads) {
#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dst + r * stride;
    const float* s = src + r * stride;
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      vf v;
      std::memcpy(&v, s + i, sizeof(vf));
      vstream(d + i, v);
    }
    for (; i < n; ++i) d[i] = s[i];
  }
  _mm_sfence();
}

int64_t quad_args_size() { return sizeof(Args); }

int64_t quad_chunk_envs() { return CHUNK; }

int64_t quad_width() { return W; }

// Advance every env one control step and write its observations; with reset_inline, also reset the finished envs
// (see run_parallel). counts[] tells the caller what happened.
void quad_step(const Args* a) { run_parallel(*a, true); }

// The in-pass resets of the last quad_step, when it left them to the caller (counts[1] == 0, pool refilled since:
// pool_* describe the new pool).
void quad_reset_done(const Args* ap) {
  const Args& a = *ap;
  const int64_t chunks = num_chunks(a);
#pragma omp parallel for num_threads(thread_count(a)) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c)
    if (chunk_has_done(a, c)) reset_chunk_flushed(a, c);
  a.counts[1] = 1;
}

// Observations only: of every env (ids == nullptr) or of the ``count`` envs in ``ids``.
void quad_observe(const Args* a, const int64_t* ids, int64_t count) {
  if (ids == nullptr) {
    run_parallel(*a, false);
    return;
  }
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);  // flush denormals, as run_range
  Lanes L;
  L.contig = false;
  for (int64_t i = 0; i < count; i += W) {
    L.cnt = (int)(count - i < W ? count - i : W);
    for (int l = 0; l < W; ++l) L.idx[l] = ids[i + (l < L.cnt ? l : L.cnt - 1)];
    observe(*a, L, load_state(*a, L));
  }
  _mm_setcsr(csr);
}
}

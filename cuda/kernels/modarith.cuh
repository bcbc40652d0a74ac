// Modular arithmetic of Lattigo v5 (ring/modular_reduction.go), word for
// word: the same Montgomery (MRed, MRedLazy), Barrett (BRedAdd, MForm) and
// conditional-subtraction (CRed) formulas as kernels/modarith.go, so that
// every lazy (non-canonical) intermediate equals the CPU reference's.
//
// Self-contained: it needs no CUDA header, so that clang can compile it
// with -nocudainc -nocudalib as well as nvcc.
#pragma once

#if defined(__NVCC__)
#define CP_TID_X threadIdx.x
#define CP_BID_X blockIdx.x
#define CP_BID_Y blockIdx.y
#define CP_BDIM_X blockDim.x
#define CP_SYNC() __syncthreads()
#define CP_MULHI(a, b) __umul64hi((a), (b))
#define CP_CLZLL(a) __clzll((long long)(a))
#else // clang -x cuda -nocudainc: declare what the CUDA headers would
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define CP_TID_X __nvvm_read_ptx_sreg_tid_x()
#define CP_BID_X __nvvm_read_ptx_sreg_ctaid_x()
#define CP_BID_Y __nvvm_read_ptx_sreg_ctaid_y()
#define CP_BDIM_X __nvvm_read_ptx_sreg_ntid_x()
#define CP_SYNC() __syncthreads()
#define CP_MULHI(a, b) __nvvm_mulhi_ull((a), (b))
#define CP_CLZLL(a) __builtin_clzll(a)
#endif

typedef unsigned long long u64;
typedef unsigned int u32;

// Per-modulus constants, packed as 5 words: q, mred, bred[0], bred[1], ninv.
#define MOD_WORDS 5

__device__ __forceinline__ u64 mred(u64 x, u64 y, u64 q, u64 qinv) {
  u64 mhi = CP_MULHI(x, y), mlo = x * y;
  u64 hhi = CP_MULHI(mlo * qinv, q);
  u64 r = mhi - hhi + q;
  return r >= q ? r - q : r;
}

__device__ __forceinline__ u64 mred_lazy(u64 x, u64 y, u64 q, u64 qinv) {
  u64 ahi = CP_MULHI(x, y), alo = x * y;
  return ahi - CP_MULHI(alo * qinv, q) + q;
}

__device__ __forceinline__ u64 bred_add(u64 a, u64 q, u64 u0) {
  u64 r = a - CP_MULHI(a, u0) * q;
  return r >= q ? r - q : r;
}

__device__ __forceinline__ u64 cred(u64 a, u64 q) { return a >= q ? a - q : a; }

__device__ __forceinline__ u64 mform(u64 a, u64 q, u64 u0, u64 u1) {
  u64 mhi = CP_MULHI(a, u1);
  u64 r = (0 - (a * u0 + mhi)) * q;
  return r >= q ? r - q : r;
}

// 128-bit accumulate: (hi, lo) += x*y.
__device__ __forceinline__ void mac128(u64 &hi, u64 &lo, u64 x, u64 y) {
  u64 mlo = x * y, mhi = CP_MULHI(x, y);
  u64 s = lo + mlo;
  hi += mhi + (s < lo ? 1 : 0);
  lo = s;
}

// Lattigo's forward butterfly, the input reduced below 4q when reduce is set.
__device__ __forceinline__ void butterfly(u64 &x, u64 &y, u64 psi, u64 q, u64 qinv, bool reduce) {
  u64 u = x;
  if (reduce && u >= 4 * q) u -= 4 * q;
  u64 v = mred_lazy(y, psi, q, qinv);
  x = u + v;
  y = u + 2 * q - v;
}

// Lattigo's inverse butterfly.
__device__ __forceinline__ void inv_butterfly(u64 &x, u64 &y, u64 psi, u64 q, u64 qinv) {
  u64 u = x, w = y;
  u64 s = u + w;
  if (s >= 2 * q) s -= 2 * q;
  x = s;
  y = mred_lazy(u + 4 * q - w, psi, q, qinv);
}

// forward_reduces is kernels.forwardReduces: whether stage m (t = N/2m)
// reduces the butterfly inputs.
__device__ __forceinline__ bool forward_reduces(u64 m, u64 t) {
  u64 len = 64 - (u64)CP_CLZLL(m);
  return m > 1 && ((len & 1) == 1 || t == 1);
}

// A buffer view (kernels.Layout) passed as words.
// LevelQ may be -1 (a view of P limbs only), hence the signed levels.
struct Lay {
  u64 qoff, poff, stride;
  long long lq, lp;
};

#define LAY_PARAMS(p) u64 p##_qoff, u64 p##_poff, u64 p##_stride, u64 p##_lq, u64 p##_lp
#define LAY_MAKE(p) Lay{p##_qoff, p##_poff, p##_stride, (long long)p##_lq, (long long)p##_lp}

__device__ __forceinline__ u64 lay_limbs(const Lay &l) { return (u64)(l.lq + 1 + l.lp + 1); }

__device__ __forceinline__ u64 *limb_ptr(u64 *base, const Lay &l, u64 n, u64 k, u64 j) {
  return base + ((long long)j <= l.lq ? l.qoff + k * l.stride + j * n
                                      : l.poff + k * l.stride + (j - (u64)(l.lq + 1)) * n);
}

// mod_index maps limb j of a basis to its index in the Q ++ P modulus table.
__device__ __forceinline__ u64 mod_index(u64 j, long long lq, u64 nq) {
  return (long long)j <= lq ? j : nq + j - (u64)(lq + 1);
}

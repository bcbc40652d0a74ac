// CUDA kernels of the cipherprune GPU backend (package cuda). Each kernel
// is the device port of a CPU reference routine in package kernels and
// performs the same arithmetic in the same order on every word, so that
// results (lazy intermediates included) are identical to Lattigo v5's.
//
// Conventions: every parameter is a 64-bit word (pointers and integers),
// which keeps the Go-side argument packing trivial. A polynomial batch is
// described by its base pointer and its layout (kernels.Layout: Q offset, P
// offset, stride, levelQ, levelP); grid.y enumerates (polynomial, limb)
// pairs unless said otherwise. The modulus table holds MOD_WORDS words per
// modulus, Q moduli first, then P; the twiddle tables hold N words per
// modulus in the same order.
#include "modarith.cuh"

// Shared-memory NTT chunk: 2048 words (16 KiB), one butterfly per thread.
#define CHUNK 2048

// ---------------------------------------------------------------------------
// NTT

// ntt_global_stage runs one forward stage (m, t) over global memory, one
// butterfly per thread: stages whose butterfly span 2t exceeds CHUNK.
// first: read from src (the first stage), else in place on dst.
extern "C" __global__ void ntt_global_stage(u64 *dst, LAY_PARAMS(d), u64 *src, LAY_PARAMS(s), u64 *mods,
                                            u64 *roots, u64 nq, u64 n, u64 j0, u64 nlimbs, u64 m, u64 t,
                                            u64 first) {
  Lay dl = LAY_MAKE(d), sl = LAY_MAKE(s);
  u64 b = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (b >= n / 2) return;
  u64 k = CP_BID_Y / nlimbs, j = j0 + CP_BID_Y % nlimbs;
  u64 mi = mod_index(j, dl.lq, nq);
  u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1];
  u64 *z = limb_ptr(dst, dl, n, k, j);
  u64 *x = first ? limb_ptr(src, sl, n, k, j) : z;
  u64 g = b / t, r = b % t, j1 = 2 * g * t + r;
  u64 u = x[j1], v = x[j1 + t];
  butterfly(u, v, roots[mi * n + m + g], q, qinv, !first && forward_reduces(m, t));
  z[j1] = u;
  z[j1 + t] = v;
}

// ntt_shared_tail runs the forward stages from (m0, t0) down to t = 1 on one
// CHUNK-word (or N-word, if smaller) block in shared memory, then reduces
// to [0, q) unless lazy; grid.x enumerates (polynomial, limb, chunk). first: stage m0 is the first stage (read src).
extern "C" __global__ void ntt_shared_tail(u64 *dst, LAY_PARAMS(d), u64 *src, LAY_PARAMS(s), u64 *mods,
                                           u64 *roots, u64 nq, u64 n, u64 j0, u64 nlimbs, u64 m0, u64 t0,
                                           u64 first, u64 lazy) {
  __shared__ u64 sh[CHUNK];
  Lay dl = LAY_MAKE(d), sl = LAY_MAKE(s);
  u64 c = n < CHUNK ? n : CHUNK;
  u64 chunks = n / c;
  u64 blk = CP_BID_X;
  u64 chunk = blk % chunks, pl = blk / chunks;
  u64 k = pl / nlimbs, j = j0 + pl % nlimbs;
  u64 mi = mod_index(j, dl.lq, nq);
  u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1], u0 = mods[mi * MOD_WORDS + 2];
  const u64 *w = roots + mi * n;
  u64 *z = limb_ptr(dst, dl, n, k, j) + chunk * c;
  u64 *x = (first ? limb_ptr(src, sl, n, k, j) : limb_ptr(dst, dl, n, k, j)) + chunk * c;
  for (u64 i = CP_TID_X; i < c; i += CP_BDIM_X) sh[i] = x[i];
  CP_SYNC();
  u64 m = m0, t = t0;
  bool isfirst = first != 0;
  for (; t >= 1; t >>= 1, m <<= 1) {
    for (u64 b = CP_TID_X; b < c / 2; b += CP_BDIM_X) {
      u64 g = b / t, r = b % t, j1 = 2 * g * t + r;
      u64 gg = (chunk * c + j1) / (2 * t); // global group index
      u64 u = sh[j1], v = sh[j1 + t];
      butterfly(u, v, w[m + gg], q, qinv, !isfirst && forward_reduces(m, t));
      sh[j1] = u;
      sh[j1 + t] = v;
    }
    isfirst = false;
    CP_SYNC();
    if (t == 1) break;
  }
  for (u64 i = CP_TID_X; i < c; i += CP_BDIM_X) z[i] = lazy ? sh[i] : bred_add(sh[i], q, u0);
}

// intt_shared_head runs the inverse stages t = 1 .. c/2 on one chunk in
// shared memory, reading src (grid.x enumerates (polynomial, limb,
// chunk)). When the whole transform fits (n <= CHUNK) it
// also multiplies by N^-1 (lazily or not); otherwise ninv is 0 and
// intt_global_stage continues.
extern "C" __global__ void intt_shared_head(u64 *dst, LAY_PARAMS(d), u64 *src, LAY_PARAMS(s), u64 *mods,
                                            u64 *roots, u64 nq, u64 n, u64 j0, u64 nlimbs, u64 ninv,
                                            u64 lazy) {
  __shared__ u64 sh[CHUNK];
  Lay dl = LAY_MAKE(d), sl = LAY_MAKE(s);
  u64 c = n < CHUNK ? n : CHUNK;
  u64 chunks = n / c;
  u64 chunk = CP_BID_X % chunks, pl = CP_BID_X / chunks;
  u64 k = pl / nlimbs, j = j0 + pl % nlimbs;
  u64 mi = mod_index(j, dl.lq, nq);
  u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1], nv = mods[mi * MOD_WORDS + 4];
  const u64 *w = roots + mi * n;
  u64 *z = limb_ptr(dst, dl, n, k, j) + chunk * c;
  u64 *x = limb_ptr(src, sl, n, k, j) + chunk * c;
  for (u64 i = CP_TID_X; i < c; i += CP_BDIM_X) sh[i] = x[i];
  CP_SYNC();
  for (u64 t = 1; t < c; t <<= 1) {
    u64 h = n / (2 * t);
    for (u64 b = CP_TID_X; b < c / 2; b += CP_BDIM_X) {
      u64 g = b / t, r = b % t, j1 = 2 * g * t + r;
      u64 gg = (chunk * c + j1) / (2 * t);
      u64 u = sh[j1], v = sh[j1 + t];
      inv_butterfly(u, v, w[h + gg], q, qinv);
      sh[j1] = u;
      sh[j1 + t] = v;
    }
    CP_SYNC();
  }
  for (u64 i = CP_TID_X; i < c; i += CP_BDIM_X) {
    u64 a = sh[i];
    if (ninv) a = lazy ? mred_lazy(a, nv, q, qinv) : mred(a, nv, q, qinv);
    z[i] = a;
  }
}

// intt_global_stage runs one inverse stage of span t >= CHUNK in place.
extern "C" __global__ void intt_global_stage(u64 *dst, LAY_PARAMS(d), u64 *mods, u64 *roots, u64 nq, u64 n,
                                             u64 j0, u64 nlimbs, u64 t) {
  Lay dl = LAY_MAKE(d);
  u64 b = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (b >= n / 2) return;
  u64 k = CP_BID_Y / nlimbs, j = j0 + CP_BID_Y % nlimbs;
  u64 mi = mod_index(j, dl.lq, nq);
  u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1];
  u64 *z = limb_ptr(dst, dl, n, k, j);
  u64 g = b / t, r = b % t, j1 = 2 * g * t + r;
  u64 h = n / (2 * t);
  u64 u = z[j1], v = z[j1 + t];
  inv_butterfly(u, v, roots[mi * n + h + g], q, qinv);
  z[j1] = u;
  z[j1 + t] = v;
}

// ---------------------------------------------------------------------------
// Coefficient-wise operations

enum {
  OP_COPY = 0,
  OP_ADD = 1,
  OP_SUB = 2,
  OP_REDUCE = 3,
  OP_MFORM = 4,
  OP_MULMONT = 5,
  OP_MULMONT_ADD = 6,
  OP_NINV = 7,      // multiply by N^-1 (Montgomery), the INTT's last step
  OP_NINV_LAZY = 8, // the same, lazily
};

// vec_op applies op to limbs j0..j0+nlimbs-1 of every polynomial:
// z = op(x, y) (OP_MULMONT_ADD reads z too). All three views share levels.
extern "C" __global__ void vec_op(u64 op, u64 *z, LAY_PARAMS(d), u64 *x, LAY_PARAMS(a), u64 *y, LAY_PARAMS(b),
                                  u64 *mods, u64 nq, u64 n, u64 j0, u64 nlimbs) {
  Lay dl = LAY_MAKE(d), al = LAY_MAKE(a), bl = LAY_MAKE(b);
  u64 i = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (i >= n) return;
  u64 k = CP_BID_Y / nlimbs, j = j0 + CP_BID_Y % nlimbs;
  u64 mi = mod_index(j, dl.lq, nq);
  const u64 *md = mods + mi * MOD_WORDS;
  u64 q = md[0], qinv = md[1];
  u64 *pz = limb_ptr(z, dl, n, k, j);
  u64 a = limb_ptr(x, al, n, k, j)[i];
  u64 b = y ? limb_ptr(y, bl, n, k, j)[i] : 0;
  u64 r;
  switch (op) {
  case OP_COPY: r = a; break;
  case OP_ADD: r = cred(a + b, q); break;
  case OP_SUB: r = cred(a + q - b, q); break;
  case OP_REDUCE: r = bred_add(a, q, md[2]); break;
  case OP_MFORM: r = mform(a, q, md[2], md[3]); break;
  case OP_MULMONT: r = mred(a, b, q, qinv); break;
  case OP_MULMONT_ADD: r = cred(pz[i] + mred(a, b, q, qinv), q); break;
  case OP_NINV: r = mred(a, md[4], q, qinv); break;
  default: r = mred_lazy(a, md[4], q, qinv); break;
  }
  pz[i] = r;
}

// automorphism_ntt is ring.AutomorphismNTTWithIndex: z[i] = x[index[i]].
extern "C" __global__ void automorphism_ntt(u64 *z, LAY_PARAMS(d), u64 *x, LAY_PARAMS(a), u64 *index, u64 n,
                                            u64 nlimbs) {
  Lay dl = LAY_MAKE(d), al = LAY_MAKE(a);
  u64 i = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (i >= n) return;
  u64 k = CP_BID_Y / nlimbs, j = CP_BID_Y % nlimbs;
  limb_ptr(z, dl, n, k, j)[i] = limb_ptr(x, al, n, k, j)[index[i]];
}

// ---------------------------------------------------------------------------
// Key switching

// decompose_digit is one digit of Lattigo's DecomposeAndSplit (fused: the
// centered basis extension of the group Q_start..Q_start+size-1 to every
// other limb of the output, then the subtraction of half the group's
// product). grid.y enumerates the input polynomials; the output of input k
// is polynomial k*digits+digit of dst. The group's own limbs are left to
// the caller (copied from the NTT-domain input afterwards).
//   inv[size]         SOverSiInvSi
//   modd[rows*size]   SOverSiModD, row = modulus index (Q ++ P)
//   vt[rows*(size+1)] VTimesSModD
//   half[size + nQ + nP] HalfModGroup ++ HalfModQ ++ HalfModP
extern "C" __global__ void decompose_digit(u64 *dst, LAY_PARAMS(d), u64 *src, LAY_PARAMS(s), u64 *mods, u64 nq,
                                           u64 np, u64 n, u64 digits, u64 digit, u64 start, u64 size, u64 *inv,
                                           u64 *modd, u64 *vt, u64 *half) {
  Lay dl = LAY_MAKE(d), sl = LAY_MAKE(s);
  u64 x = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (x >= n) return;
  u64 k = CP_BID_Y;
  u64 out = k * digits + digit;
  u64 limbs = lay_limbs(dl);
  if (size == 1) {
    u64 qs = mods[start * MOD_WORDS];
    u64 coeff = limb_ptr(src, sl, n, k, start)[x];
    bool neg = coeff >= (qs >> 1);
    if (neg) coeff = qs - coeff;
    for (u64 j = 0; j < limbs; j++) {
      if (j == start) continue;
      u64 mi = mod_index(j, dl.lq, nq);
      u64 q = mods[mi * MOD_WORDS];
      u64 t = bred_add(coeff, q, mods[mi * MOD_WORDS + 2]);
      limb_ptr(dst, dl, n, out, j)[x] = neg ? q - t : t;
    }
    return;
  }
  u64 y[32];
  double vf = 0;
  for (u64 s = 0; s < size; s++) {
    u64 mi = start + s;
    u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1];
    u64 a = limb_ptr(src, sl, n, k, start + s)[x] + half[s];
    y[s] = mred(a, inv[s], q, qinv);
    vf += (double)y[s] / (double)q;
  }
  u64 v = (u64)vf;
  for (u64 j = 0; j < limbs; j++) {
    if (j >= start && j < start + size) continue;
    u64 mi = mod_index(j, dl.lq, nq);
    u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1];
    const u64 *row = modd + mi * size;
    u64 hi = CP_MULHI(y[0], row[0]), lo = y[0] * row[0];
    for (u64 s = 1; s < size; s++) mac128(hi, lo, y[s], row[s]);
    u64 r = hi - CP_MULHI(lo * qinv, q) + q + vt[mi * (size + 1) + v];
    u64 h = (long long)j <= dl.lq ? half[size + j] : half[size + nq + (j - (u64)(dl.lq + 1))];
    limb_ptr(dst, dl, n, out, j)[x] = cred(r + q - h, q);
  }
  (void)np;
}

// gadget_inner_product is the fused multiply-accumulate of the digits with
// the key (Lattigo's MulCoeffsMontgomeryLazy[ThenAddLazy] with its periodic
// Reduce): grid.y enumerates (group, limb); for group g,
// dst[2g+c] = sum_i digits[g*nd+i] * key[2i+c].
extern "C" __global__ void gadget_inner_product(u64 *dst, LAY_PARAMS(d), u64 *dig, LAY_PARAMS(g), u64 *key,
                                                LAY_PARAMS(k), u64 *mods, u64 nq, u64 n, u64 nd, u64 qoverf,
                                                u64 poverf) {
  Lay dl = LAY_MAKE(d), gl = LAY_MAKE(g), kl = LAY_MAKE(k);
  u64 x = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (x >= n) return;
  u64 limbs = lay_limbs(dl);
  u64 grp = CP_BID_Y / limbs, j = CP_BID_Y % limbs;
  u64 mi = mod_index(j, dl.lq, nq);
  u64 q = mods[mi * MOD_WORDS], qinv = mods[mi * MOD_WORDS + 1], u0 = mods[mi * MOD_WORDS + 2];
  u64 overf = (long long)j <= dl.lq ? qoverf : poverf;
  u64 a0 = 0, a1 = 0;
  for (u64 i = 0; i < nd; i++) {
    u64 w = limb_ptr(dig, gl, n, grp * nd + i, j)[x];
    a0 += mred_lazy(limb_ptr(key, kl, n, 2 * i, j)[x], w, q, qinv);
    a1 += mred_lazy(limb_ptr(key, kl, n, 2 * i + 1, j)[x], w, q, qinv);
    if (i % overf == overf - 1) {
      a0 = bred_add(a0, q, u0);
      a1 = bred_add(a1, q, u0);
    }
  }
  if (nd % overf != 0) {
    a0 = bred_add(a0, q, u0);
    a1 = bred_add(a1, q, u0);
  }
  limb_ptr(dst, dl, n, 2 * grp, j)[x] = a0;
  limb_ptr(dst, dl, n, 2 * grp + 1, j)[x] = a1;
}

// moddown_extend is the middle of ModDownQPtoQNTT (fused): from the
// INTTLazy'd P limbs tmpP (count x (lp+1) limbs, contiguous), adds P/2,
// extends to Q_0..Q_lq (ModUpExact) and subtracts P/2 mod Q_i, into tmpQ
// (count x (lq+1) limbs, contiguous). grid.y enumerates polynomials.
//   inv[np'] modd[nq*np'] vt[nq*(np'+1)]  (np' = lp+1), halfp[np'], halfq[nq]
extern "C" __global__ void moddown_extend(u64 *tmpq, u64 *tmpp, u64 *mods, u64 nq, u64 n, u64 lq, u64 lp,
                                          u64 *inv, u64 *modd, u64 *vt, u64 *halfp, u64 *halfq) {
  u64 x = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (x >= n) return;
  u64 k = CP_BID_Y;
  u64 ns = lp + 1;
  u64 y[32];
  double vf = 0;
  for (u64 s = 0; s < ns; s++) {
    u64 mi = nq + s;
    u64 p = mods[mi * MOD_WORDS], pinv = mods[mi * MOD_WORDS + 1];
    u64 a = cred(tmpp[(k * ns + s) * n + x] + halfp[s], p);
    y[s] = mred(a, inv[s], p, pinv);
    vf += (double)y[s] / (double)p;
  }
  u64 v = (u64)vf;
  for (u64 i = 0; i <= lq; i++) {
    u64 q = mods[i * MOD_WORDS], qinv = mods[i * MOD_WORDS + 1];
    const u64 *row = modd + i * ns;
    u64 hi = CP_MULHI(y[0], row[0]), lo = y[0] * row[0];
    for (u64 s = 1; s < ns; s++) mac128(hi, lo, y[s], row[s]);
    u64 r = hi - CP_MULHI(lo * qinv, q) + q + vt[i * (ns + 1) + v];
    tmpq[(k * (lq + 1) + i) * n + x] = cred(r + q - halfq[i], q);
  }
}

// sub_mul_scalar is SubThenMulScalarMontgomeryTwoModulus against a
// contiguous scratch t (count x nlimbs limbs): out = MRed(2q - in + t, c_j)
// on limbs 0..nlimbs-1 of every polynomial; c_j = neg ? q_j - cst[j] : cst[j].
extern "C" __global__ void sub_mul_scalar(u64 *dst, LAY_PARAMS(d), u64 *src, LAY_PARAMS(s), u64 *t, u64 *cst,
                                          u64 neg, u64 *mods, u64 nq, u64 n, u64 nlimbs) {
  Lay dl = LAY_MAKE(d), sl = LAY_MAKE(s);
  u64 x = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (x >= n) return;
  u64 k = CP_BID_Y / nlimbs, i = CP_BID_Y % nlimbs;
  u64 q = mods[i * MOD_WORDS], qinv = mods[i * MOD_WORDS + 1];
  u64 c = neg ? q - cst[i] : cst[i];
  u64 a = limb_ptr(src, sl, n, k, i)[x];
  limb_ptr(dst, dl, n, k, i)[x] = mred(2 * q - a + t[(k * nlimbs + i) * n + x], c, q, qinv);
  (void)nq;
}

// rescale_spread is the middle of DivRoundByLastModulusNTT: from the
// INTTLazy'd last limb top (count x 1 limb), adds (q_l-1)/2 mod q_l and
// spreads it to limbs 0..l-1 of the scratch t (count x l limbs) with the
// lazy offset q_i - ((q_l-1)/2 mod q_i).
extern "C" __global__ void rescale_spread(u64 *t, u64 *top, u64 *mods, u64 n, u64 l) {
  u64 x = (u64)CP_BID_X * CP_BDIM_X + CP_TID_X;
  if (x >= n) return;
  u64 k = CP_BID_Y;
  u64 ql = mods[l * MOD_WORDS];
  u64 phalf = (ql - 1) >> 1;
  u64 a = cred(top[k * n + x] + phalf, ql);
  for (u64 i = 0; i < l; i++) {
    u64 q = mods[i * MOD_WORDS];
    t[(k * l + i) * n + x] = a + (q - bred_add(phalf, q, mods[i * MOD_WORDS + 2]));
  }
}

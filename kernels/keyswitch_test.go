package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// testLevels are the ciphertext levels tested: the top, and one that
// leaves a short last digit.
func (tc *testContext) testLevels() []int {
	top := tc.params.MaxLevelQ()
	levels := []int{top}
	if mid := top/2 + 1; mid != top {
		levels = append(levels, mid)
	}
	return levels
}

// TestDecomposeNTT compares the gadget decomposition with
// rlwe.Evaluator.DecomposeNTT digit by digit.
func TestDecomposeNTT(t *testing.T) {
	for _, tc := range getContexts(t) {
		levelP := tc.params.MaxLevelP()
		rng := rand.New(rand.NewPCG(13, 14))
		for _, levelQ := range tc.testLevels() {
			c := randomPoly(rng, tc.params.RingQ(), levelQ)
			digits := tc.kp.DigitCount(levelQ, levelP)
			basis := Basis{levelQ, levelP}
			want := make([]ringqp.Poly, digits)
			for i := range want {
				want[i] = tc.newQP(basis)
			}
			tc.lattigo.DecomposeNTT(levelQ, levelP, levelP+1, c, true, want)
			for _, be := range tc.backends(t) {
				t.Run(fmt.Sprintf("level=%d/%s/%s", levelQ, tc.name, be.Name()), func(t *testing.T) {
					cNTT := upload(t, be, Basis{levelQ, -1}, ringqp.Poly{Q: c})
					cCoeff, _ := be.Alloc(Basis{levelQ, -1}, 1)
					if err := be.INTT(cCoeff, cNTT); err != nil {
						t.Fatal(err)
					}
					dst, _ := be.Alloc(basis, digits)
					if err := be.DecomposeNTT(dst, cNTT, cCoeff, levelP); err != nil {
						t.Fatal(err)
					}
					for i, got := range tc.download(t, be, dst) {
						if err := equalQP(want[i], got, basis); err != nil {
							t.Fatalf("digit %d: %v", i, err)
						}
					}
				})
			}
		}
	}
}

// TestModDownNTT compares the division by P with rlwe.Evaluator.ModDownQPtoQNTT.
func TestModDownNTT(t *testing.T) {
	for _, tc := range getContexts(t) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, levelQ := range tc.testLevels() {
			for levelP := 0; levelP <= tc.params.MaxLevelP(); levelP++ {
				basis := Basis{levelQ, levelP}
				in := tc.randomQP(rng, basis)
				want := ring.NewPoly(tc.params.N(), levelQ)
				tc.lattigo.ModDownQPtoQNTT(levelQ, levelP, *in.Q.CopyNew(), *in.P.CopyNew(), want)
				for _, be := range tc.backends(t) {
					t.Run(fmt.Sprintf("%s/%s/%s", basis, tc.name, be.Name()), func(t *testing.T) {
						src := upload(t, be, basis, in, in)
						dst, _ := be.Alloc(Basis{levelQ, -1}, 2)
						if err := be.ModDownNTT(dst, src); err != nil {
							t.Fatal(err)
						}
						for _, got := range tc.download(t, be, dst) {
							if err := equalPoly(want, got.Q, levelQ+1); err != nil {
								t.Fatal(err)
							}
						}
					})
				}
			}
		}
	}
}

// TestGadgetProduct compares the whole key switch of one polynomial with
// rlwe.Evaluator.GadgetProduct, for the relinearization key.
func TestGadgetProduct(t *testing.T) {
	for _, tc := range getContexts(t) {
		rng := rand.New(rand.NewPCG(17, 18))
		for _, levelQ := range tc.testLevels() {
			c := randomPoly(rng, tc.params.RingQ(), levelQ)
			want := rlwe.NewCiphertext(tc.params, 1, levelQ)
			tc.lattigo.GadgetProduct(levelQ, c, &tc.rlk.GadgetCiphertext, want)
			for _, be := range tc.backends(t) {
				t.Run(fmt.Sprintf("level=%d/%s/%s", levelQ, tc.name, be.Name()), func(t *testing.T) {
					keys, err := UploadEvaluationKeySet(be, tc.rlk)
					if err != nil {
						t.Fatal(err)
					}
					ev := NewEvaluator(be, keys)
					cx := upload(t, be, Basis{levelQ, -1}, ringqp.Poly{Q: c})
					out, _ := be.Alloc(Basis{levelQ, -1}, 2)
					if err := ev.GadgetProduct(levelQ, cx, keys.Relin.Key, out); err != nil {
						t.Fatal(err)
					}
					for i, got := range tc.download(t, be, out) {
						if err := equalPoly(want.Value[i], got.Q, levelQ+1); err != nil {
							t.Fatalf("component %d: %v", i, err)
						}
					}
				})
			}
		}
	}
}

// TestCiphertextOps compares Rotate (and conjugation), MulRelin (squaring
// included) and Rescale of CKKS ciphertexts with Lattigo's evaluator, word
// for word and metadata included.
func TestCiphertextOps(t *testing.T) {
	for _, tc := range getContexts(t) {
		rng := rand.New(rand.NewPCG(19, 20))
		for _, be := range tc.backends(t) {
			keys, err := UploadEvaluationKeySet(be, tc.rlk, tc.gks...)
			if err != nil {
				t.Fatal(err)
			}
			ev := NewEvaluator(be, keys)
			for _, level := range tc.testLevels() {
				a, b := tc.randomCiphertext(t, rng, level), tc.randomCiphertext(t, rng, level)
				da, err := ev.UploadCiphertext(a)
				if err != nil {
					t.Fatal(err)
				}
				db, err := ev.UploadCiphertext(b)
				if err != nil {
					t.Fatal(err)
				}
				check := func(t *testing.T, want *rlwe.Ciphertext, got *Ciphertext) {
					t.Helper()
					out := rlwe.NewCiphertext(tc.params, 1, got.Level())
					if err := ev.DownloadCiphertext(got, out); err != nil {
						t.Fatal(err)
					}
					if err := equalCiphertext(want, out); err != nil {
						t.Fatal(err)
					}
				}
				name := func(op string) string { return fmt.Sprintf("%s/level=%d/%s/%s", op, level, tc.name, be.Name()) }
				for _, k := range testRotations {
					t.Run(name(fmt.Sprintf("Rotate(%d)", k)), func(t *testing.T) {
						want, err := tc.lattigo.RotateNew(a, k)
						if err != nil {
							t.Fatal(err)
						}
						out, _ := ev.NewCiphertext(level)
						if err := ev.Rotate(da, k, out); err != nil {
							t.Fatal(err)
						}
						check(t, want, out)
					})
				}
				t.Run(name("Conjugate"), func(t *testing.T) {
					want, err := tc.lattigo.ConjugateNew(a)
					if err != nil {
						t.Fatal(err)
					}
					out, _ := ev.NewCiphertext(level)
					if err := ev.Automorphism(da, tc.params.GaloisElementOrderTwoOrthogonalSubgroup(), out); err != nil {
						t.Fatal(err)
					}
					check(t, want, out)
				})
				t.Run(name("MulRelin"), func(t *testing.T) {
					want, err := tc.lattigo.MulRelinNew(a, b)
					if err != nil {
						t.Fatal(err)
					}
					out, _ := ev.NewCiphertext(level)
					if err := ev.MulRelin(da, db, out); err != nil {
						t.Fatal(err)
					}
					check(t, want, out)
				})
				t.Run(name("Square"), func(t *testing.T) {
					want, err := tc.lattigo.MulRelinNew(a, a)
					if err != nil {
						t.Fatal(err)
					}
					out, _ := ev.NewCiphertext(level)
					if err := ev.MulRelin(da, da, out); err != nil {
						t.Fatal(err)
					}
					check(t, want, out)
				})
				t.Run(name("Rescale"), func(t *testing.T) {
					prod, err := tc.lattigo.MulRelinNew(a, b)
					if err != nil {
						t.Fatal(err)
					}
					want := rlwe.NewCiphertext(tc.params, 1, level-1)
					if err := tc.lattigo.Rescale(prod, want); err != nil {
						t.Fatal(err)
					}
					dp, err := ev.UploadCiphertext(prod)
					if err != nil {
						t.Fatal(err)
					}
					out, _ := ev.NewCiphertext(level)
					if err := ev.Rescale(dp, out); err != nil {
						t.Fatal(err)
					}
					check(t, want, out)
					// In place.
					if err := ev.Rescale(dp, dp); err != nil {
						t.Fatal(err)
					}
					check(t, want, dp)
				})
				t.Run(name("MulRelin-Rescale-Rotate-in-place"), func(t *testing.T) {
					want, err := tc.lattigo.MulRelinNew(a, b)
					if err != nil {
						t.Fatal(err)
					}
					if err := tc.lattigo.Rescale(want, want); err != nil {
						t.Fatal(err)
					}
					if err := tc.lattigo.Rotate(want, testRotations[0], want); err != nil {
						t.Fatal(err)
					}
					out, _ := ev.NewCiphertext(level)
					if err := ev.MulRelin(da, db, out); err != nil {
						t.Fatal(err)
					}
					if err := ev.Rescale(out, out); err != nil {
						t.Fatal(err)
					}
					if err := ev.Rotate(out, testRotations[0], out); err != nil {
						t.Fatal(err)
					}
					check(t, want, out)
				})
			}
			if err := ev.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestEvaluatorErrors(t *testing.T) {
	tc := getContexts(t)[0]
	be, _ := NewCPU(tc.kp, CPUOptions{})
	ev := NewEvaluator(be, nil)
	ct, _ := ev.NewCiphertext(0)
	out, _ := ev.NewCiphertext(0)
	if err := ev.Rotate(ct, 1, out); err == nil {
		t.Error("Rotate without key: no error")
	}
	if err := ev.MulRelin(ct, ct, out); err == nil {
		t.Error("MulRelin without key: no error")
	}
	if err := ev.Rescale(ct, out); err == nil {
		t.Error("Rescale at level 0: no error")
	}
	bad := *tc.rlk.GadgetCiphertext.CopyNew()
	bad.BaseTwoDecomposition = 8
	if _, err := be.UploadGadgetKey(&bad); err == nil {
		t.Error("BaseTwoDecomposition key accepted")
	}
}

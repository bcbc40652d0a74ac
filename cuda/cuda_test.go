//go:build cuda

package cuda

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cipherprune/cipherprune/kernels"
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

// These tests run the CUDA backend on the inputs of the CPU reference and
// of Lattigo and require identical words. Without a usable GPU they skip,
// unless CIPHERPRUNE_REQUIRE_GPU=1, which makes that a failure.

func chain(first, size, count int) []int {
	q := []int{first}
	for i := 0; i < count; i++ {
		q = append(q, size)
	}
	return q
}

var shapes = []struct {
	name string
	lit  ckks.ParametersLiteral
}{
	{"N12-Q4-P2", ckks.ParametersLiteral{LogN: 12, LogQ: []int{55, 45, 45, 45}, LogP: []int{61, 61}, LogDefaultScale: 45}},
	{"Interactive14-chain@N11", ckks.ParametersLiteral{LogN: 11, LogQ: chain(46, 33, 10), LogP: []int{60}, LogDefaultScale: 33}},
	{"Interactive14", ckks.ParametersLiteral{LogN: 14, LogQ: chain(46, 33, 10), LogP: []int{60}, LogDefaultScale: 33}},
	{"Interactive15", ckks.ParametersLiteral{LogN: 15, LogQ: chain(55, 40, 16), LogP: []int{60, 60, 60}, LogDefaultScale: 40}},
	{"Interactive15-chain@N16", ckks.ParametersLiteral{LogN: 16, LogQ: chain(55, 40, 16), LogP: []int{60, 60, 60}, LogDefaultScale: 40}},
}

var rotations = []int{1, -3, 17}

type gpuContext struct {
	name    string
	params  ckks.Parameters
	kp      *kernels.Params
	rlk     *rlwe.RelinearizationKey
	gks     []*rlwe.GaloisKey
	lattigo *ckks.Evaluator
	enc     *rlwe.Encryptor
	ecd     *ckks.Encoder
	cpu     *kernels.CPU
	gpu     kernels.Backend
}

func openGPU(t *testing.T, kp *kernels.Params) kernels.Backend {
	t.Helper()
	be, err := Open(kp)
	if err != nil {
		if os.Getenv("CIPHERPRUNE_REQUIRE_GPU") == "1" {
			t.Fatalf("no usable GPU: %v", err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	return be
}

func newGPUContext(t *testing.T, name string, lit ckks.ParametersLiteral) *gpuContext {
	params, err := ckks.NewParametersFromLiteral(lit)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := kernels.NewParams(params.Parameters)
	if err != nil {
		t.Fatal(err)
	}
	gpu := openGPU(t, kp)
	cpu, err := kernels.NewCPU(kp, kernels.CPUOptions{Workers: -1})
	if err != nil {
		t.Fatal(err)
	}
	kgen := rlwe.NewKeyGenerator(params)
	sk := kgen.GenSecretKeyNew()
	rlk := kgen.GenRelinearizationKeyNew(sk)
	gks := kgen.GenGaloisKeysNew(append(params.GaloisElements(rotations), params.GaloisElementOrderTwoOrthogonalSubgroup()), sk)
	return &gpuContext{name: name, params: params, kp: kp, rlk: rlk, gks: gks,
		lattigo: ckks.NewEvaluator(params, rlwe.NewMemEvaluationKeySet(rlk, gks...)),
		enc:     rlwe.NewEncryptor(params, sk), ecd: ckks.NewEncoder(params), cpu: cpu, gpu: gpu}
}

func (c *gpuContext) newQP(b kernels.Basis) ringqp.Poly {
	p := ringqp.Poly{Q: ring.NewPoly(c.params.N(), b.LevelQ)}
	if b.LevelP >= 0 {
		p.P = ring.NewPoly(c.params.N(), b.LevelP)
	}
	return p
}

func (c *gpuContext) randomQP(rng *rand.Rand, b kernels.Basis, bound uint64) ringqp.Poly {
	p := c.newQP(b)
	fill := func(r *ring.Ring, poly ring.Poly) {
		for i, s := range r.SubRings[:poly.Level()+1] {
			for j := range poly.Coeffs[i] {
				poly.Coeffs[i][j] = rng.Uint64N(bound * s.Modulus)
			}
		}
	}
	fill(c.params.RingQ(), p.Q)
	if b.LevelP >= 0 {
		fill(c.params.RingP(), p.P)
	}
	return p
}

// both runs f on the CPU reference and on the GPU with the same inputs and
// compares every output buffer word for word.
func (c *gpuContext) both(t *testing.T, in []kernels.Basis, inputs [][]ringqp.Poly, out []kernels.Basis, counts []int,
	f func(be kernels.Backend, ins, outs []kernels.Buffer) error) {
	t.Helper()
	var results [2][][]ringqp.Poly
	for bi, be := range []kernels.Backend{c.cpu, c.gpu} {
		ins := make([]kernels.Buffer, len(in))
		for i := range in {
			buf, err := be.Alloc(in[i], len(inputs[i]))
			if err != nil {
				t.Fatal(err)
			}
			if err := be.Upload(buf, inputs[i]); err != nil {
				t.Fatal(err)
			}
			ins[i] = buf
		}
		outs := make([]kernels.Buffer, len(out))
		for i := range out {
			buf, err := be.Alloc(out[i], counts[i])
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = buf
		}
		if err := f(be, ins, outs); err != nil {
			t.Fatalf("%s: %v", be.Name(), err)
		}
		for i := range outs {
			polys := make([]ringqp.Poly, counts[i])
			for k := range polys {
				polys[k] = c.newQP(out[i])
			}
			if err := be.Download(outs[i], polys); err != nil {
				t.Fatal(err)
			}
			results[bi] = append(results[bi], polys)
		}
		for _, b := range append(ins, outs...) {
			if err := be.Free(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range results[0] {
		for k := range results[0][i] {
			want, got := results[0][i][k], results[1][i][k]
			for l := 0; l <= out[i].LevelQ; l++ {
				for j := range want.Q.Coeffs[l] {
					if want.Q.Coeffs[l][j] != got.Q.Coeffs[l][j] {
						t.Fatalf("output %d poly %d Q limb %d coeff %d: gpu %d, cpu %d", i, k, l, j, got.Q.Coeffs[l][j], want.Q.Coeffs[l][j])
					}
				}
			}
			for l := 0; l <= out[i].LevelP; l++ {
				for j := range want.P.Coeffs[l] {
					if want.P.Coeffs[l][j] != got.P.Coeffs[l][j] {
						t.Fatalf("output %d poly %d P limb %d coeff %d: gpu %d, cpu %d", i, k, l, j, got.P.Coeffs[l][j], want.P.Coeffs[l][j])
					}
				}
			}
		}
	}
}

func TestGPUBitExact(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			c := newGPUContext(t, s.name, s.lit)
			defer c.gpu.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			full := kernels.Basis{LevelQ: c.kp.MaxLevelQ(), LevelP: c.kp.MaxLevelP()}
			x, y := c.randomQP(rng, full, 1), c.randomQP(rng, full, 1)
			lazy := c.randomQP(rng, full, 2) // below 2q: the INTT's lazy inputs
			one := []kernels.Basis{full}
			two := []kernels.Basis{full, full}
			unary := map[string]func(be kernels.Backend, z, a kernels.Buffer) error{
				"NTT": kernels.Backend.NTT, "NTTLazy": kernels.Backend.NTTLazy, "INTT": kernels.Backend.INTT,
				"INTTLazy": kernels.Backend.INTTLazy, "Reduce": kernels.Backend.Reduce, "MForm": kernels.Backend.MForm,
				"Copy": kernels.Backend.Copy,
			}
			for name, op := range unary {
				for _, in := range []ringqp.Poly{x, lazy} {
					c.both(t, one, [][]ringqp.Poly{{in, in}}, one, []int{2}, func(be kernels.Backend, ins, outs []kernels.Buffer) error {
						return op(be, outs[0], ins[0])
					})
				}
				t.Logf("%s: ok", name)
			}
			binary := map[string]func(be kernels.Backend, z, a, b kernels.Buffer) error{
				"Add": kernels.Backend.Add, "Sub": kernels.Backend.Sub, "MulCoeffsMontgomery": kernels.Backend.MulCoeffsMontgomery,
				"MulCoeffsMontgomeryThenAdd": kernels.Backend.MulCoeffsMontgomeryThenAdd,
			}
			for name, op := range binary {
				c.both(t, two, [][]ringqp.Poly{{x}, {y}}, one, []int{1}, func(be kernels.Backend, ins, outs []kernels.Buffer) error {
					return op(be, outs[0], ins[0], ins[1])
				})
				t.Logf("%s: ok", name)
			}
			for _, gk := range c.gks {
				c.both(t, one, [][]ringqp.Poly{{x}}, one, []int{1}, func(be kernels.Backend, ins, outs []kernels.Buffer) error {
					idx, err := be.NewAutomorphismIndex(gk.GaloisElement)
					if err != nil {
						return err
					}
					return be.AutomorphismNTT(outs[0], ins[0], idx)
				})
			}
			t.Logf("AutomorphismNTT: ok")
			for _, level := range []int{c.kp.MaxLevelQ(), c.kp.MaxLevelQ()/2 + 1} {
				qb := kernels.Basis{LevelQ: level, LevelP: -1}
				for levelP := 0; levelP <= c.kp.MaxLevelP(); levelP++ {
					qp := kernels.Basis{LevelQ: level, LevelP: levelP}
					d := c.kp.DigitCount(level, levelP)
					cx := c.randomQP(rng, qb, 1)
					c.both(t, []kernels.Basis{qb}, [][]ringqp.Poly{{cx, cx}}, []kernels.Basis{qp, qb}, []int{2 * d, 2},
						func(be kernels.Backend, ins, outs []kernels.Buffer) error {
							coeff, err := be.Alloc(qb, 2)
							if err != nil {
								return err
							}
							if err := be.INTT(coeff, ins[0]); err != nil {
								return err
							}
							if err := be.DecomposeNTT(outs[0], ins[0], coeff, levelP); err != nil {
								return err
							}
							return be.ModDownNTT(outs[1], outs[0].Slice(0, 2))
						})
				}
				t.Logf("DecomposeNTT, ModDownNTT level %d: ok", level)
			}
			c.ciphertextOps(t, rng)
		})
	}
}

// ciphertextOps compares Rotate, MulRelin and Rescale on the GPU with Lattigo.
func (c *gpuContext) ciphertextOps(t *testing.T, rng *rand.Rand) {
	keys, err := kernels.UploadEvaluationKeySet(c.gpu, c.rlk, c.gks...)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Release()
	ev := kernels.NewEvaluator(c.gpu, keys)
	defer ev.Close()
	for _, level := range []int{c.kp.MaxLevelQ(), c.kp.MaxLevelQ()/2 + 1} {
		newCt := func() *rlwe.Ciphertext {
			values := make([]complex128, c.params.MaxSlots())
			for i := range values {
				values[i] = complex(rng.Float64()*2-1, rng.Float64()*2-1)
			}
			pt := ckks.NewPlaintext(c.params, level)
			if err := c.ecd.Encode(values, pt); err != nil {
				t.Fatal(err)
			}
			ct, err := c.enc.EncryptNew(pt)
			if err != nil {
				t.Fatal(err)
			}
			return ct
		}
		a, b := newCt(), newCt()
		da, err := ev.UploadCiphertext(a)
		if err != nil {
			t.Fatal(err)
		}
		db, err := ev.UploadCiphertext(b)
		if err != nil {
			t.Fatal(err)
		}
		check := func(op string, want *rlwe.Ciphertext, got *kernels.Ciphertext) {
			out := rlwe.NewCiphertext(c.params, 1, got.Level())
			if err := ev.DownloadCiphertext(got, out); err != nil {
				t.Fatal(err)
			}
			if want.Level() != out.Level() || want.Scale.Cmp(out.Scale) != 0 {
				t.Fatalf("%s level %d: level/scale differ", op, level)
			}
			for i := range want.Value {
				for l := 0; l <= want.Level(); l++ {
					for j := range want.Value[i].Coeffs[l] {
						if want.Value[i].Coeffs[l][j] != out.Value[i].Coeffs[l][j] {
							t.Fatalf("%s level %d: poly %d limb %d coeff %d: gpu %d, lattigo %d", op, level, i, l, j,
								out.Value[i].Coeffs[l][j], want.Value[i].Coeffs[l][j])
						}
					}
				}
			}
			t.Logf("%s level %d: identical to Lattigo", op, level)
		}
		out, err := ev.NewCiphertext(level)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range rotations {
			want, err := c.lattigo.RotateNew(a, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Rotate(da, k, out); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("Rotate(%d)", k), want, out)
		}
		want, err := c.lattigo.MulRelinNew(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.MulRelin(da, db, out); err != nil {
			t.Fatal(err)
		}
		check("MulRelin", want, out)
		if err := c.lattigo.Rescale(want, want); err != nil {
			t.Fatal(err)
		}
		if err := ev.Rescale(out, out); err != nil {
			t.Fatal(err)
		}
		check("Rescale", want, out)
	}
}

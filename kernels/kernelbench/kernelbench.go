// Package kernelbench measures a kernels.Backend (the GPU, or the CPU
// reference) on the hot operations of the engine: NTT and inverse NTT of
// one limb and of a ciphertext, the key switch (gadget product), Rotate and
// MulRelin, at the presets' ring degrees and limb counts. For each it
// reports the median time, the memory-traffic floor (the bytes the
// operation must move, over the backend's measured copy bandwidth), their
// ratio, and Lattigo's time for the same operation on this CPU, measured in
// the same run.
//
// It is what `cipherprune gpubench` prints.
package kernelbench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
	"github.com/tuneinsight/lattigo/v5/utils/sampling"

	"github.com/cipherprune/cipherprune/kernels"
)

// Shape is one ring degree and modulus chain.
type Shape struct {
	// Name names the shape in the output.
	Name string
	// LogN is log2 of the ring degree; LogQ and LogP the primes' sizes.
	LogN       int
	LogQ, LogP []int
}

// Shapes are the default shapes: Interactive14 itself, Interactive15's
// chain (17 Q and 3 P primes) at N = 2^16, and a 24-prime chain at
// N = 2^16. They are for timing only: the last two are not security
// presets.
var Shapes = []Shape{
	{"Interactive14", 14, chain(46, 33, 10), []int{60}},
	{"Interactive15-chain", 16, chain(55, 40, 16), []int{60, 60, 60}},
	{"24-limb", 16, chain(55, 40, 23), []int{60, 60, 60}},
}

func chain(first, rest, n int) []int {
	out := []int{first}
	for range n {
		out = append(out, rest)
	}
	return out
}

// Opener opens the backend under test for a shape's parameters.
type Opener func(*kernels.Params) (kernels.Backend, error)

// Config configures Run.
type Config struct {
	// Shapes to measure (nil: Shapes).
	Shapes []Shape
	// Reps is the number of timed repetitions per operation (0: 20).
	Reps int
	// Open opens the backend under test.
	Open Opener
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Result is one operation on one shape.
type Result struct {
	Shape, Op, Backend string
	// Limbs is the number of Q primes the operation runs on.
	Limbs int
	// Median is the backend's median time; Floor the memory-traffic floor
	// (Bytes over the measured bandwidth); Lattigo the median time of
	// Lattigo's same operation on the CPU.
	Median, Floor, Lattigo time.Duration
	// Bytes is the traffic the floor counts.
	Bytes int64
}

// Ratio is Median over Floor.
func (r Result) Ratio() float64 { return float64(r.Median) / float64(r.Floor) }

// Speedup is Lattigo's time over the backend's.
func (r Result) Speedup() float64 { return float64(r.Lattigo) / float64(r.Median) }

// Bandwidth is a backend's measured device copy bandwidth on one shape.
type Bandwidth struct {
	Shape       string
	BytesPerSec float64
}

// Report is the result of Run.
type Report struct {
	Backend    string
	Bandwidths []Bandwidth
	Results    []Result
}

// Run measures every shape.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Open == nil {
		return nil, fmt.Errorf("cannot Run: no backend opener")
	}
	shapes := cfg.Shapes
	if shapes == nil {
		shapes = Shapes
	}
	reps := cfg.Reps
	if reps <= 0 {
		reps = 20
	}
	rep := &Report{}
	for _, s := range shapes {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "kernelbench: %s (N = 2^%d, %d+%d primes): keys...\n", s.Name, s.LogN, len(s.LogQ), len(s.LogP))
		}
		if err := runShape(ctx, s, reps, cfg.Open, rep); err != nil {
			return rep, fmt.Errorf("cannot Run: %s: %w", s.Name, err)
		}
	}
	return rep, nil
}

// median times reps calls of f (after one warm-up call) and returns the
// median.
func median(reps int, f func() error) (time.Duration, error) {
	if err := f(); err != nil {
		return 0, err
	}
	ts := make([]time.Duration, reps)
	for i := range ts {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ts[i] = time.Since(t0)
	}
	slices.Sort(ts)
	return ts[reps/2], nil
}

func runShape(ctx context.Context, s Shape, reps int, open Opener, rep *Report) error {
	params, err := ckks.NewParametersFromLiteral(ckks.ParametersLiteral{LogN: s.LogN, LogQ: s.LogQ, LogP: s.LogP, LogDefaultScale: s.LogQ[1]})
	if err != nil {
		return err
	}
	kp, err := kernels.NewParams(params.Parameters)
	if err != nil {
		return err
	}
	be, err := open(kp)
	if err != nil {
		return err
	}
	defer be.Close()
	rep.Backend = be.Name()

	kgen := rlwe.NewKeyGenerator(params)
	sk := kgen.GenSecretKeyNew()
	rlk := kgen.GenRelinearizationKeyNew(sk)
	galEl := params.GaloisElement(1)
	gk := kgen.GenGaloisKeyNew(galEl, sk)
	keys, err := kernels.UploadEvaluationKeySet(be, rlk, gk)
	if err != nil {
		return err
	}
	defer keys.Release()
	ev := kernels.NewEvaluator(be, keys)
	defer ev.Close()
	lev := ckks.NewEvaluator(params, rlwe.NewMemEvaluationKeySet(rlk, gk))

	level := params.MaxLevelQ()
	limbs := level + 1
	n := params.N()
	word := int64(8)
	ctBytes := 2 * int64(limbs) * int64(n) * word
	keyBytes := int64(len(rlk.Value)) * 2 * int64(limbs+params.PCount()) * int64(n) * word

	// Random NTT-domain ciphertexts (uniform polynomials: timing only).
	prng, err := sampling.NewPRNG()
	if err != nil {
		return err
	}
	us := ring.NewUniformSampler(prng, params.RingQ())
	randomCt := func() *rlwe.Ciphertext {
		ct := rlwe.NewCiphertext(params, 1, level)
		us.Read(ct.Value[0])
		us.Read(ct.Value[1])
		ct.IsNTT = true
		ct.Scale = params.DefaultScale()
		return ct
	}
	a, b := randomCt(), randomCt()
	da, err := ev.UploadCiphertext(a)
	if err != nil {
		return err
	}
	db, err := ev.UploadCiphertext(b)
	if err != nil {
		return err
	}
	dout, err := ev.NewCiphertext(level)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range []*kernels.Ciphertext{da, db, dout} {
			_ = ev.FreeCiphertext(c)
		}
	}()
	lout := rlwe.NewCiphertext(params, 1, level)

	// Device copy bandwidth: a ciphertext-sized copy reads and writes it.
	src, err := be.Alloc(kernels.Basis{LevelQ: level, LevelP: -1}, 2)
	if err != nil {
		return err
	}
	defer be.Free(src)
	dst, err := be.Alloc(kernels.Basis{LevelQ: level, LevelP: -1}, 2)
	if err != nil {
		return err
	}
	defer be.Free(dst)
	sync := func(f func() error) func() error {
		return func() error {
			if err := f(); err != nil {
				return err
			}
			return be.Synchronize()
		}
	}
	tCopy, err := median(reps, sync(func() error { return be.Copy(dst, src) }))
	if err != nil {
		return err
	}
	bw := float64(2*ctBytes) / tCopy.Seconds()
	rep.Bandwidths = append(rep.Bandwidths, Bandwidth{Shape: s.Name, BytesPerSec: bw})
	floor := func(bytes int64) time.Duration { return time.Duration(float64(bytes) / bw * 1e9) }

	limb := dst.AtLevel(0, -1).Poly(0)
	rq := params.RingQ()
	p := rq.NewPoly()
	us.Read(p)
	pc := *p.CopyNew()
	cx := src.Poly(0)
	ksOut := dst
	ops := []struct {
		name    string
		limbs   int
		bytes   int64
		ours    func() error
		lattigo func() error
	}{
		{"NTT/limb", 1, 2 * int64(n) * word, func() error { return be.NTT(limb, limb) },
			func() error { rq.SubRings[0].NTT(p.Coeffs[0], p.Coeffs[0]); return nil }},
		{"INTT/limb", 1, 2 * int64(n) * word, func() error { return be.INTT(limb, limb) },
			func() error { rq.SubRings[0].INTT(p.Coeffs[0], p.Coeffs[0]); return nil }},
		{"NTT/ciphertext", limbs, 2 * ctBytes, func() error { return be.NTT(dst, dst) },
			func() error { rq.NTT(p, p); rq.NTT(pc, pc); return nil }},
		{"INTT/ciphertext", limbs, 2 * ctBytes, func() error { return be.INTT(dst, dst) },
			func() error { rq.INTT(p, p); rq.INTT(pc, pc); return nil }},
		{"KeySwitch", limbs, keyBytes + ctBytes, func() error { return ev.GadgetProduct(level, cx, keys.Relin.Key, ksOut) },
			func() error { lev.GadgetProduct(level, a.Value[1], &rlk.GadgetCiphertext, lout); return nil }},
		{"Rotate", limbs, keyBytes + 2*ctBytes, func() error { return ev.Rotate(da, 1, dout) },
			func() error { return lev.Rotate(a, 1, lout) }},
		{"MulRelin", limbs, keyBytes + 3*ctBytes, func() error { return ev.MulRelin(da, db, dout) },
			func() error { return lev.MulRelin(a, b, lout) }},
	}
	for _, op := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		ours, err := median(reps, sync(op.ours))
		if err != nil {
			return fmt.Errorf("%s: %w", op.name, err)
		}
		lat, err := median(reps, op.lattigo)
		if err != nil {
			return fmt.Errorf("%s (Lattigo): %w", op.name, err)
		}
		rep.Results = append(rep.Results, Result{Shape: s.Name, Op: op.name, Backend: be.Name(), Limbs: op.limbs,
			Median: ours, Floor: floor(op.bytes), Lattigo: lat, Bytes: op.bytes})
	}
	return nil
}

// Table writes the report as a text table.
func (r *Report) Table(w io.Writer) {
	fmt.Fprintf(w, "backend %s\n", r.Backend)
	for _, b := range r.Bandwidths {
		fmt.Fprintf(w, "%s: copy bandwidth %.1f GB/s\n", b.Shape, b.BytesPerSec/1e9)
	}
	fmt.Fprintf(w, "%-20s %-16s %5s %12s %12s %7s %12s %8s\n", "shape", "op", "limbs", "median", "floor", "ratio", "lattigo", "speedup")
	for _, x := range r.Results {
		fmt.Fprintf(w, "%-20s %-16s %5d %12s %12s %7.1f %12s %8.1f\n", x.Shape, x.Op, x.Limbs, x.Median, x.Floor, x.Ratio(), x.Lattigo, x.Speedup())
	}
}

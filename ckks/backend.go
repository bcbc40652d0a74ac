package ckks

import (
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/kernels"
)

// WithBackend runs the evaluator's key switches (every rotation, hoisted
// ones included, and the ciphertext products with relinearization) and its
// rescales through a kernels.Backend: the GPU (cuda.Open) or kernels' CPU
// reference. The kernels compute what Lattigo computes, word for word
// (kernels' bit-exactness tests), so results agree with the default
// Lattigo path to the last bit for those operations; a hoisted rotation is
// run as separate rotations, which differ from Lattigo's hoisted ones only
// in the noise.
//
// This is the engine's seam to the device, not yet its fast path: each
// operation uploads its operands and downloads its result, and the
// polynomial evaluations (GELU, exp, the reciprocal, 1/√x, tanh) and the
// relinearization of accumulated products stay on Lattigo. The evaluation
// keys are uploaded once, in NewEvaluator.
func WithBackend(be kernels.Backend) EvaluatorOption {
	return func(ev *Evaluator) error {
		if be == nil {
			return errors.New("nil kernels backend")
		}
		ev.backend = be
		return nil
	}
}

// KernelParams returns the kernels parameters of params, to open a
// kernels.Backend for WithBackend (cuda.Open, kernels.NewCPU).
func KernelParams(params Parameters) (*kernels.Params, error) {
	kp, err := kernels.NewParams(params.Parameters.Parameters)
	if err != nil {
		return nil, fmt.Errorf("cannot KernelParams: %w", err)
	}
	return kp, nil
}

// Backend returns the name of the backend the key switches run on:
// "lattigo" by default, else the kernels backend's name.
func (ev *Evaluator) Backend() string {
	if ev.backend == nil {
		return "lattigo"
	}
	return ev.backend.Name()
}

// newDeviceEvaluator uploads evk's keys to be and returns the evaluator
// the workers share (kernels.Evaluator is safe for concurrent use on
// distinct outputs).
func newDeviceEvaluator(be kernels.Backend, evk rlwe.EvaluationKeySet) (*kernels.Evaluator, error) {
	rlk, err := evk.GetRelinearizationKey()
	if err != nil {
		rlk = nil // no products then
	}
	var gks []*rlwe.GaloisKey
	for _, g := range evk.GetGaloisKeysList() {
		gk, err := evk.GetGaloisKey(g)
		if err != nil {
			return nil, fmt.Errorf("Galois key %d: %w", g, err)
		}
		gks = append(gks, gk)
	}
	set, err := kernels.UploadEvaluationKeySet(be, rlk, gks...)
	if err != nil {
		return nil, err
	}
	return kernels.NewEvaluator(be, set), nil
}

// onDevice runs f on device copies of in and writes its result, downloaded,
// into out (which may be one of in).
func (w *worker) onDevice(out *rlwe.Ciphertext, f func(dev []*kernels.Ciphertext, res *kernels.Ciphertext) error, in ...*rlwe.Ciphertext) error {
	dev := make([]*kernels.Ciphertext, len(in))
	defer func() {
		for _, d := range dev {
			if d != nil {
				_ = w.kev.FreeCiphertext(d)
			}
		}
	}()
	level := 0
	for i, ct := range in {
		d, err := w.kev.UploadCiphertext(ct)
		if err != nil {
			return err
		}
		dev[i] = d
		level = max(level, ct.Level())
	}
	res, err := w.kev.NewCiphertext(level)
	if err != nil {
		return err
	}
	defer func() { _ = w.kev.FreeCiphertext(res) }()
	if err := f(dev, res); err != nil {
		return err
	}
	return w.kev.DownloadCiphertext(res, out)
}

// rotate writes rot_k(ct) into out.
func (w *worker) rotate(ct *rlwe.Ciphertext, k int, out *rlwe.Ciphertext) error {
	if w.kev == nil {
		return w.eval.Rotate(ct, k, out)
	}
	return w.onDevice(out, func(d []*kernels.Ciphertext, r *kernels.Ciphertext) error {
		return w.kev.Rotate(d[0], k, r)
	}, ct)
}

// rotateNew returns rot_k(ct).
func (w *worker) rotateNew(ct *rlwe.Ciphertext, k int) (*rlwe.Ciphertext, error) {
	if w.kev == nil {
		return w.eval.RotateNew(ct, k)
	}
	out := hefloat.NewCiphertext(w.params, 1, ct.Level())
	return out, w.rotate(ct, k, out)
}

// rescaleOnDevice divides ct by its last prime in place on the backend.
func (w *worker) rescaleOnDevice(ct *rlwe.Ciphertext) error {
	return w.onDevice(ct, func(d []*kernels.Ciphertext, r *kernels.Ciphertext) error {
		return w.kev.Rescale(d[0], r)
	}, ct)
}

// rotateHoistedNew returns rot_k(ct) for every k of rots, sharing one
// decomposition on Lattigo's path.
func (w *worker) rotateHoistedNew(ct *rlwe.Ciphertext, rots []int) (map[int]*rlwe.Ciphertext, error) {
	if w.kev == nil {
		return w.eval.RotateHoistedNew(ct, rots)
	}
	out := make(map[int]*rlwe.Ciphertext, len(rots))
	for _, k := range rots {
		r, err := w.rotateNew(ct, k)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}

// mulRelin writes a·b, relinearized (not rescaled), into out.
func (w *worker) mulRelin(a, b, out *rlwe.Ciphertext) error {
	if w.kev == nil || a.Degree() != 1 || b.Degree() != 1 {
		return w.eval.MulRelin(a, b, out)
	}
	return w.onDevice(out, func(d []*kernels.Ciphertext, r *kernels.Ciphertext) error {
		return w.kev.MulRelin(d[0], d[1], r)
	}, a, b)
}

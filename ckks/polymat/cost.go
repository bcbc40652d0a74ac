package polymat

import (
	"fmt"
	"math"
)

// CostModel turns the work of a block shape into seconds, so that
// ChooseBlock and Plan can weigh products, encodings and bytes. The
// defaults (zero fields) are one idle core of the development machine
// (Lattigo v5.0.7, research notes section 7: 6.6 µs per lazy multiply-add
// of a 2-limb polynomial at N = 2^12, 68 µs per 2-limb NTT) and a 1 Gbit/s
// link; only their ratios matter to the choice.
type CostModel struct {
	// MAC is the time of one lazy Montgomery multiply-accumulate of one
	// coefficient of one limb (default 0.8 ns).
	MAC float64
	// Transform is the time of one NTT or inverse NTT of one limb, per
	// coefficient (default 8 ns at N = 2^12, 34 µs per limb, growing as
	// log N).
	Transform float64
	// Encode is the time of encoding one weight plaintext per coefficient
	// and limb outside its NTT: clearing it, placing the weights in
	// Montgomery form and the copy to the backend (default 6 ns; measured
	// with the NTT at 1.5 to 2.3 times the NTT alone).
	Encode float64
	// Byte is the time of one byte on the wire (default 8 ns: 1 Gbit/s).
	Byte float64
	// InBits is the bits per coefficient of an input ciphertext's c0 (0:
	// the packed width of Q) and OutBits of an output ciphertext's
	// coefficients (0: the same).
	InBits, OutBits float64
}

// Transforms per ciphertext outside the products, per limb: an input is
// encoded, its noise transformed and, when the server adds its share, its
// share transformed (3); an output is re-randomized (one transform of the
// fresh u), brought to the coefficient domain (two), and decrypted by the
// client (two).
const (
	inTransforms  = 3
	outTransforms = 5
)

func (cm CostModel) withDefaults(params Parameters) CostModel {
	if cm.MAC == 0 {
		cm.MAC = 0.8e-9
	}
	if cm.Transform == 0 {
		cm.Transform = 8e-9 * float64(params.LogN()) / 12
	}
	if cm.Encode == 0 {
		cm.Encode = 6e-9
	}
	if cm.Byte == 0 {
		cm.Byte = 8e-9
	}
	q := float64(params.PolyBytes()*8) / float64(params.N())
	if cm.InBits == 0 {
		cm.InBits = q
	}
	if cm.OutBits == 0 {
		cm.OutBits = q
	}
	return cm
}

// Cost is the work of one product with a given layout and way of holding
// the weights.
type Cost struct {
	Block
	// PreEncoded is true when the weight plaintexts are encoded once and
	// held, false when every call encodes them.
	PreEncoded bool
	// Products is the number of ciphertext-plaintext products.
	Products int
	// Inputs and Outputs are the ciphertexts each way; Weights the weight
	// plaintexts.
	Inputs, Outputs, Weights int
	// BytesIn and BytesOut estimate the bytes each way (the payloads, not
	// the frame headers).
	BytesIn, BytesOut int64
	// PlaintextBytes is the memory of all weight plaintexts,
	// Weights·L·N·8: held between calls when PreEncoded (what a weight
	// budget bounds), never all at once otherwise.
	PlaintextBytes int64
	// WeightBytes is the memory held between calls for W: PlaintextBytes
	// when PreEncoded, else the integer matrix (In·Out·8 bytes).
	WeightBytes int64
	// EncodeSeconds is the modelled time of encoding the weights per call
	// (0 when PreEncoded), part of Seconds.
	EncodeSeconds float64
	// Seconds is the modelled time of one call (what ChooseBlock
	// minimizes).
	Seconds float64
}

// Estimate returns the cost of lay under cm, with the weights pre-encoded
// or encoded per call. With L limbs ("levels") and ring degree N:
//
//	products   = RowBlocks·InnerBlocks·ColBlocks, each 2·L·N lazy MACs
//	transforms = L·(3·Inputs + 5·Outputs) NTTs of N coefficients
//	bytes      = Inputs·(N·InBits/8 + 32) + Σ_outputs (N + targets)·OutBits/8
//	encode     = Weights·L·N·(Transform + Encode) per call, 0 if pre-encoded
//	seconds    = products·2LN·MAC + transforms·N·Transform + bytes·Byte + encode
//
// An output ciphertext sends its whole c1 but c0 only at its targets.
func (cm CostModel) Estimate(params Parameters, lay Layout, preEncoded bool) Cost {
	cm = cm.withDefaults(params)
	n := float64(params.N())
	limbs := float64(params.Limbs())
	c := Cost{
		Block:          lay.Block,
		PreEncoded:     preEncoded,
		Products:       lay.Products(),
		Inputs:         lay.Inputs(),
		Outputs:        lay.Outputs(),
		Weights:        lay.Weights(),
		PlaintextBytes: WeightBytes(params, lay.Weights()),
	}
	c.BytesIn = int64(float64(c.Inputs) * (math.Ceil(n*cm.InBits/8) + SeedSize))
	out := float64(c.Outputs)*n + float64(lay.TotalTargets())
	c.BytesOut = int64(math.Ceil(out * cm.OutBits / 8))
	if preEncoded {
		c.WeightBytes = c.PlaintextBytes
	} else {
		c.WeightBytes = int64(lay.In) * int64(lay.Out) * 8
		c.EncodeSeconds = float64(c.Weights) * limbs * n * (cm.Transform + cm.Encode)
	}
	c.Seconds = float64(c.Products)*2*limbs*n*cm.MAC +
		limbs*float64(inTransforms*c.Inputs+outTransforms*c.Outputs)*n*cm.Transform +
		float64(c.BytesIn+c.BytesOut)*cm.Byte + c.EncodeSeconds
	return c
}

// ChooseBlock returns the cheapest way to multiply by W for d: the block
// of least modelled time (ties to less memory), with the weights
// pre-encoded where their plaintexts fit budget bytes and encoded per call
// otherwise. A budget of 0 encodes per call whatever the shape; a negative
// budget bounds nothing (every shape pre-encoded).
func (cm CostModel) ChooseBlock(params Parameters, d Dims, budget int64) (Cost, error) {
	opts, err := cm.options(params, d)
	if err != nil {
		return Cost{}, fmt.Errorf("cannot ChooseBlock: %w", err)
	}
	return pick(opts, budget, true), nil
}

// ChooseBlockPreEncoded is ChooseBlock restricted to pre-encoded weights:
// the block of least modelled time whose plaintexts fit budget bytes
// (negative: no bound).
func (cm CostModel) ChooseBlockPreEncoded(params Parameters, d Dims, budget int64) (Cost, error) {
	opts, err := cm.options(params, d)
	if err != nil {
		return Cost{}, fmt.Errorf("cannot ChooseBlockPreEncoded: %w", err)
	}
	c := pick(opts, budget, false)
	if !c.PreEncoded {
		return Cost{}, fmt.Errorf("cannot ChooseBlockPreEncoded: no block for %v fits %d bytes of weights", d, budget)
	}
	return c, nil
}

// ChooseRows returns the cost of the best D0 for d with the weights w
// already hold (their D1, D2 and way of holding them): for a server whose
// weights were planned for one row count and that gets another (a shorter
// input, the rows left after pruning).
func (cm CostModel) ChooseRows(params Parameters, d Dims, w *EncodedWeights) (Cost, error) {
	if err := d.Valid(); err != nil {
		return Cost{}, fmt.Errorf("cannot ChooseRows: %w", err)
	}
	if d.In != w.In || d.Out != w.Out {
		return Cost{}, fmt.Errorf("cannot ChooseRows: weights are %dx%d, product %v", w.In, w.Out, d)
	}
	best := Cost{Seconds: math.Inf(1)}
	for _, d0 := range balancedSizes(d.Rows, params.N()/(w.D1*w.D2)) {
		lay, err := NewLayout(params, d, Block{d0, w.D1, w.D2})
		if err != nil {
			continue
		}
		if c := cm.Estimate(params, lay, w.PreEncoded()); c.Seconds < best.Seconds {
			best = c
		}
	}
	if math.IsInf(best.Seconds, 1) {
		return Cost{}, fmt.Errorf("cannot ChooseRows: no block for %v with weights in blocks %dx%d", d, w.D1, w.D2)
	}
	return best, nil
}

// options returns the candidates for d: every D0 and D1 that give a
// distinct number of blocks (balanced: D0 = ceil(Rows/ceil(Rows/D0))), each
// with the largest D2 the ring allows, since a larger D2 never costs more
// (fewer products, outputs and weight plaintexts, the same inputs); each
// shape pre-encoded and encoded per call, in that order.
func (cm CostModel) options(params Parameters, d Dims) ([]Cost, error) {
	if err := d.Valid(); err != nil {
		return nil, err
	}
	n := params.N()
	var out []Cost
	for _, d0 := range balancedSizes(d.Rows, n) {
		for _, d1 := range balancedSizes(d.In, n/d0) {
			d2max := min(d.Out, n/(d0*d1))
			if d2max < 1 {
				continue
			}
			d2 := ceilDiv(d.Out, ceilDiv(d.Out, d2max))
			lay, err := NewLayout(params, d, Block{d0, d1, d2})
			if err != nil {
				continue
			}
			out = append(out, cm.Estimate(params, lay, true), cm.Estimate(params, lay, false))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no block for %v", d)
	}
	return out, nil
}

// pick returns the option of least Seconds (ties to less WeightBytes)
// among the pre-encoded ones within budget and, if onTheFly, those
// encoded per call.
func pick(opts []Cost, budget int64, onTheFly bool) Cost {
	best := Cost{Seconds: math.Inf(1)}
	for _, c := range opts {
		if c.PreEncoded && budget >= 0 && c.PlaintextBytes > budget || !c.PreEncoded && !onTheFly {
			continue
		}
		if c.Seconds < best.Seconds || c.Seconds == best.Seconds && c.WeightBytes < best.WeightBytes {
			best = c
		}
	}
	return best
}

// balancedSizes returns, for every distinct block count k of a dimension
// of size dim with blocks of at most limit, the balanced block size
// ceil(dim/k), largest first.
func balancedSizes(dim, limit int) []int {
	var out []int
	last := 0
	for k := 1; k <= dim; k++ {
		s := ceilDiv(dim, k)
		if s > limit || s == last {
			continue
		}
		out = append(out, s)
		last = s
		if s == 1 {
			break
		}
	}
	return out
}

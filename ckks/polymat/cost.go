package polymat

import (
	"fmt"
	"math"
)

// CostModel turns the work of a block shape into seconds, so that
// ChooseBlock can weigh products against bytes. The defaults (zero fields)
// are one idle core of the development machine (Lattigo v5.0.7, research
// notes section 7: 6.6 µs per lazy multiply-add of a 2-limb polynomial at
// N = 2^12, 68 µs per 2-limb NTT) and a 1 Gbit/s link; only their ratios
// matter to the choice.
type CostModel struct {
	// MAC is the time of one lazy Montgomery multiply-accumulate of one
	// coefficient of one limb (default 0.8 ns).
	MAC float64
	// Transform is the time of one NTT or inverse NTT of one limb, per
	// coefficient (default 8 ns at N = 2^12, 34 µs per limb, growing as
	// log N).
	Transform float64
	// Byte is the time of one byte on the wire (default 8 ns: 1 Gbit/s).
	Byte float64
	// InBits is the bits per coefficient of an input ciphertext's c0 (0:
	// the packed width of Q) and OutBits of an output ciphertext's
	// coefficients (0: the same).
	InBits, OutBits float64
	// MaxWeightBytes bounds the memory of the pre-encoded weights (0: no
	// bound).
	MaxWeightBytes int64
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

// Cost is the work of one product with a given layout.
type Cost struct {
	Block
	// Products is the number of ciphertext-plaintext products.
	Products int
	// Inputs and Outputs are the ciphertexts each way.
	Inputs, Outputs int
	// BytesIn and BytesOut estimate the bytes each way (the payloads, not
	// the frame headers).
	BytesIn, BytesOut int64
	// WeightBytes is the memory of the pre-encoded weights.
	WeightBytes int64
	// Seconds is the modelled time (the quantity ChooseBlock minimizes).
	Seconds float64
}

// Estimate returns the cost of lay under cm. With L limbs ("levels") and
// ring degree N:
//
//	products  = RowBlocks·InnerBlocks·ColBlocks, each 2·L·N lazy MACs
//	transforms = L·(3·Inputs + 5·Outputs) NTTs of N coefficients
//	bytes     = Inputs·(N·InBits/8 + 32) + Σ_outputs (N + targets)·OutBits/8
//	seconds   = products·2LN·MAC + transforms·N·Transform + bytes·Byte
//
// An output ciphertext sends its whole c1 but c0 only at its targets.
func (cm CostModel) Estimate(params Parameters, lay Layout) Cost {
	cm = cm.withDefaults(params)
	n := float64(params.N())
	limbs := float64(params.Limbs())
	c := Cost{
		Block:       lay.Block,
		Products:    lay.Products(),
		Inputs:      lay.Inputs(),
		Outputs:     lay.Outputs(),
		WeightBytes: WeightBytes(params, lay.Weights()),
	}
	c.BytesIn = int64(float64(c.Inputs) * (math.Ceil(n*cm.InBits/8) + SeedSize))
	out := float64(c.Outputs)*n + float64(lay.TotalTargets())
	c.BytesOut = int64(math.Ceil(out * cm.OutBits / 8))
	c.Seconds = float64(c.Products)*2*limbs*n*cm.MAC +
		limbs*float64(inTransforms*c.Inputs+outTransforms*c.Outputs)*n*cm.Transform +
		float64(c.BytesIn+c.BytesOut)*cm.Byte
	return c
}

// ChooseBlock returns the block shape of least modelled time for d within
// cm.MaxWeightBytes (ties go to less weight memory). It tries every D0 and
// D1 that give a distinct number of blocks (balanced: D0 =
// ceil(Rows/ceil(Rows/D0))), and for each the largest D2 the ring allows,
// since a larger D2 never costs more: it lowers the products, the outputs
// and the weight plaintexts, and leaves the inputs alone.
func (cm CostModel) ChooseBlock(params Parameters, d Dims) (Cost, error) {
	if err := d.Valid(); err != nil {
		return Cost{}, fmt.Errorf("cannot ChooseBlock: %w", err)
	}
	n := params.N()
	best := Cost{Seconds: math.Inf(1)}
	found := false
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
			c := cm.Estimate(params, lay)
			if cm.MaxWeightBytes > 0 && c.WeightBytes > cm.MaxWeightBytes {
				continue
			}
			if !found || c.Seconds < best.Seconds || (c.Seconds == best.Seconds && c.WeightBytes < best.WeightBytes) {
				best, found = c, true
			}
		}
	}
	if !found {
		return Cost{}, fmt.Errorf("cannot ChooseBlock: no block for %v fits %d bytes of weights", d, cm.MaxWeightBytes)
	}
	return best, nil
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

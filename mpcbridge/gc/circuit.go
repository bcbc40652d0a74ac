package gc

import (
	"fmt"
	"sync"

	"github.com/markkurossi/mpc/circuit"
	"github.com/markkurossi/mpc/types"
)

// compiled is one comparison circuit (or top-K circuit, topk.go) and its
// wire layout.
//
// Garbler input wires, in order: for each score j < bucket its K share bits
// v'_j (least significant first), then K bits of ^θ' and K bits of ^β'.
// Evaluator input wires follow: for each score its K share bits c_j. The
// output wires are the last 2*bucket wires: keep_0..keep_{b-1} then
// high_0..high_{b-1}, where high_j is [s_j > β] ∧ keep_j. See the package
// documentation for v', θ' and ^.
type compiled struct {
	k, bucket int
	circ      *circuit.Circuit
	nG, nE    int // garbler and evaluator input bits
	nAND      int // garbled tables (two labels each)
	group     int // KeepGroup of a top-K circuit (compileTopK); 0 for compile's
	tieBits   int // a top-K circuit's bits per tie share, log2(bucket)
}

// outWire returns the wire of output i (i < 2*bucket).
func (c *compiled) outWire(i int) circuit.Wire {
	return circuit.Wire(c.circ.NumWires - 2*c.bucket + i)
}

// builder emits gates in topological order. Output gates get their wire IDs
// at the end, after all internal wires, as the library's convention wants.
type builder struct {
	gates   []circuit.Gate
	next    circuit.Wire
	outputs []int // gate index of output i
	stats   circuit.Stats
}

func (b *builder) emit(op circuit.Operation, x, y circuit.Wire) int {
	b.gates = append(b.gates, circuit.Gate{Input0: x, Input1: y, Op: op})
	b.stats[op]++
	return len(b.gates) - 1
}

// gate emits op(x, y) into a fresh internal wire and returns it.
func (b *builder) gate(op circuit.Operation, x, y circuit.Wire) circuit.Wire {
	i := b.emit(op, x, y)
	b.gates[i].Output = b.next
	b.next++
	return b.gates[i].Output
}

// output emits op(x, y) as the next circuit output.
func (b *builder) output(op circuit.Operation, x, y circuit.Wire) {
	b.outputs = append(b.outputs, b.emit(op, x, y))
}

// add returns the K-bit sum x + y mod 2^K (ripple carry, K-1 AND gates).
func (b *builder) add(x, y []circuit.Wire) []circuit.Wire {
	k := len(x)
	s := make([]circuit.Wire, k)
	s[0] = b.gate(circuit.XOR, x[0], y[0])
	if k == 1 {
		return s
	}
	carry := b.gate(circuit.AND, x[0], y[0])
	for i := 1; i < k; i++ {
		t := b.gate(circuit.XOR, x[i], carry)
		s[i] = b.gate(circuit.XOR, t, y[i])
		if i == k-1 {
			break // the carry out of the top bit is dropped (mod 2^K)
		}
		// carry' = maj(x, y, carry) = carry ^ ((x^carry) & (y^carry)).
		u := b.gate(circuit.XOR, y[i], carry)
		carry = b.gate(circuit.XOR, carry, b.gate(circuit.AND, t, u))
	}
	return s
}

// greater returns a wire holding [x > y] for unsigned K-bit x, given ny = ^y
// (y's bits inverted, so no constant wire is needed): K AND gates. The carry
// c_{i+1} = [x_{0..i} > y_{0..i}] = c ^ ((c ^ x_i) & (c ^ ^y_i)), c_0 = 0.
func (b *builder) greater(x, ny []circuit.Wire) circuit.Wire {
	c := b.gate(circuit.AND, x[0], ny[0])
	for i := 1; i < len(x); i++ {
		w1 := b.gate(circuit.XOR, c, ny[i])
		w2 := b.gate(circuit.XOR, c, x[i])
		c = b.gate(circuit.XOR, c, b.gate(circuit.AND, w1, w2))
	}
	return c
}

// compile builds the comparison circuit for bucket scores of K bits.
func compile(k, bucket int) (*compiled, error) {
	if k < 2 || k > 64 || bucket < 1 || bucket > MaxBucket {
		return nil, fmt.Errorf("cannot compile: K=%d, bucket=%d out of range", k, bucket)
	}
	nG := bucket*k + 2*k
	nE := bucket * k
	b := &builder{next: circuit.Wire(nG + nE)}
	b.gates = make([]circuit.Gate, 0, bucket*(12*k))
	wires := func(base, n int) []circuit.Wire {
		w := make([]circuit.Wire, n)
		for i := range w {
			w[i] = circuit.Wire(base + i)
		}
		return w
	}
	nTheta := wires(bucket*k, k)
	nBeta := wires(bucket*k+k, k)
	sums := make([][]circuit.Wire, bucket)
	for j := range sums {
		sums[j] = b.add(wires(nG+j*k, k), wires(j*k, k))
	}
	keep := make([]circuit.Wire, bucket)
	high := make([]circuit.Wire, bucket)
	for j, s := range sums {
		keep[j] = b.greater(s, nTheta)
		high[j] = b.greater(s, nBeta)
	}
	// A zero wire (x ^ x) lets keep pass to an output for free; high is
	// revealed only for kept tokens (high ∧ keep, one AND gate), so a
	// pruned token's degree bit leaks nothing even when β < θ.
	zero := b.gate(circuit.XOR, circuit.Wire(0), circuit.Wire(0))
	for j := range keep {
		b.output(circuit.XOR, keep[j], zero)
	}
	for j := range high {
		b.output(circuit.AND, high[j], keep[j])
	}
	cc := b.finish(nG, nE, bucket)
	cc.k = k
	return cc, nil
}

// finish numbers the output wires (2*bucket outputs, emitted last) and
// returns the circuit with nG garbler and nE evaluator input bits.
func (b *builder) finish(nG, nE, bucket int) *compiled {
	if len(b.outputs) != 2*bucket {
		panic("gc: wrong number of outputs")
	}
	for i, g := range b.outputs {
		b.gates[g].Output = b.next + circuit.Wire(i)
	}
	numWires := int(b.next) + 2*bucket
	arg := func(name string, bits int) circuit.IOArg {
		return circuit.IOArg{Name: name, Type: types.Info{Type: types.TUint, IsConcrete: true,
			Bits: types.Size(bits), MinBits: types.Size(bits)}}
	}
	c := &circuit.Circuit{
		NumGates: len(b.gates),
		NumWires: numWires,
		Inputs:   circuit.IO{arg("garbler", nG), arg("evaluator", nE)},
		Outputs:  circuit.IO{arg("keep", bucket), arg("high", bucket)},
		Gates:    b.gates,
		Stats:    b.stats,
	}
	return &compiled{bucket: bucket, circ: c, nG: nG, nE: nE, nAND: int(b.stats[circuit.AND])}
}

// garblerBits returns the garbler's input bits for m = len(shares) scores
// with thresholds θ and β (ties: the top-K circuit's tie shares).
func (c *compiled) garblerBits(p Params, shares, ties []uint64, theta, beta uint64) []bool {
	if c.group > 0 {
		return c.topKGarblerBits(p, shares, ties, theta, beta)
	}
	// Adding 2^(K-1) to our share flips the sign bit of the sum, and
	// flipping the thresholds' sign bits too turns the signed comparison
	// into an unsigned one; the comparator takes the thresholds' bits
	// inverted. All of this is local arithmetic on our own inputs.
	k, mask := p.k, p.mask()
	top := uint64(1) << uint(k-1)
	in := make([]bool, 0, c.nG)
	for j := 0; j < c.bucket; j++ {
		var v uint64 // padding: s_j = 0, outputs dropped
		if j < len(shares) {
			v = shares[j]
		}
		in = bitsOf(in, (v+top)&mask, k)
	}
	in = bitsOf(in, ^(theta^top)&mask, k)
	return bitsOf(in, ^(beta^top)&mask, k)
}

// evaluatorBits returns the evaluator's input bits for m = len(shares)
// scores.
func (c *compiled) evaluatorBits(p Params, shares, ties []uint64) []bool {
	if c.group > 0 {
		return c.topKEvaluatorBits(p, shares, ties)
	}
	in := make([]bool, 0, c.nE)
	for j := 0; j < c.bucket; j++ {
		var x uint64 // padding
		if j < len(shares) {
			x = shares[j]
		}
		in = bitsOf(in, x, p.k)
	}
	return in
}

// CircuitStats describes one compiled comparison circuit.
type CircuitStats struct {
	K, Bucket int
	// Gates is the number of gates; XOR of them are free (XOR and XNOR
	// gates, free-XOR garbling) and NonXOR are AND gates, each sent as a
	// 32-byte half-gates table. NonXOR = Bucket*3K for the comparison
	// circuit (topk.go describes the top-K circuit's).
	Gates, XOR, NonXOR int
	// Wires is the number of wires.
	Wires int
	// GarblerInputs and EvaluatorInputs are the input bits of each party;
	// the evaluator gets one OT per input bit. Outputs = 2*Bucket.
	GarblerInputs, EvaluatorInputs, Outputs int
	// TableBytes is the size of the garbled tables sent to the evaluator.
	TableBytes int
}

func (c *compiled) stats() CircuitStats {
	s := c.circ.Stats
	return CircuitStats{
		K: c.k, Bucket: c.bucket,
		Gates: c.circ.NumGates, XOR: int(s.NumXOR()), NonXOR: int(s.NumNonXOR()),
		Wires:         c.circ.NumWires,
		GarblerInputs: c.nG, EvaluatorInputs: c.nE, Outputs: 2 * c.bucket,
		TableBytes: 2 * labelSize * c.nAND,
	}
}

// Cache holds compiled circuits, one per (K, bucket) and, for top-K
// circuits, per (KeepGroup, KeepBase, RankShift), built on first use.
// It is safe for concurrent use, and a compiled circuit is shared by
// concurrent calls (garbling and evaluation only read it). The zero Cache is
// ready to use; a nil *Cache compiles afresh on every call.
type Cache struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

// cacheKey names a circuit: group, base and shift are zero for compile's.
type cacheKey struct{ k, bucket, group, base, shift int }

type cacheEntry struct {
	once sync.Once
	c    *compiled
	err  error
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{} }

// get returns the circuit for (k, bucket), compiling it at most once.
func (c *Cache) get(k, bucket int) (*compiled, error) {
	return c.lookup(cacheKey{k: k, bucket: bucket}, func() (*compiled, error) { return compile(k, bucket) })
}

// forParams returns the circuit of p for bucket: the comparison circuit, or
// the top-K circuit for Params with a KeepGroup.
func (c *Cache) forParams(p Params, bucket int) (*compiled, error) {
	if p.group == 0 {
		return c.get(p.k, bucket)
	}
	key := cacheKey{p.k, bucket, p.group, p.base, p.shift}
	return c.lookup(key, func() (*compiled, error) { return compileTopK(p.k, bucket, p.group, p.base, p.shift) })
}

// lookup returns the circuit of key, built by build at most once.
func (c *Cache) lookup(key cacheKey, build func() (*compiled, error)) (*compiled, error) {
	if c == nil {
		return build()
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[cacheKey]*cacheEntry)
	}
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{}
		c.entries[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.c, e.err = build() })
	return e.c, e.err
}

// Stats returns the size of p's circuit for the given bucket (one of
// p.Buckets()), compiling and caching it if needed.
func (c *Cache) Stats(p Params, bucket int) (CircuitStats, error) {
	if !p.valid() {
		return CircuitStats{}, fmt.Errorf("cannot Stats: invalid Params (use NewParams)")
	}
	if b, err := p.Bucket(bucket); err != nil || b != bucket {
		return CircuitStats{}, fmt.Errorf("cannot Stats: %d is not one of the buckets %v", bucket, p.buckets)
	}
	cc, err := c.forParams(p, bucket)
	if err != nil {
		return CircuitStats{}, fmt.Errorf("cannot Stats: %w", err)
	}
	return cc.stats(), nil
}

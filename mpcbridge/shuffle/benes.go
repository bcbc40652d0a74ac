package shuffle

import "math/bits"

// A Benes network on size = 2^k slots, in slot form: a layer is a list of
// switches, each acting on two slots (a, b) of one array of size values. A
// switch with bit s replaces (x_a, x_b) by (c, d) = (x_a, x_b) if s = 0 and
// (x_b, x_a) if s = 1, writing c to slot a and d to slot b. The wiring
// between layers is only a relabelling of slots, so no values move between
// layers.
//
// The recursive construction of B(m) on the slot list S (|S| = m):
//
//	m = 1   no switch
//	m = 2   one layer: (S[0], S[1])
//	m > 2   first layer (S[2i], S[2i+1]) for i < m/2; B(m/2) on the upper
//	        slots U[i] = S[2i] and B(m/2) on the lower slots L[i] = S[2i+1],
//	        side by side (their layers are merged, upper switches first);
//	        last layer (S[2i], S[2i+1]) again: a = upper output i, b = lower
//	        output i, c = output 2i, d = output 2i+1.
//
// B(m) has 2 log2 m - 1 layers of m/2 switches (none for m = 1). With every
// bit 0 it is the identity: slot j ends holding input j.

type pair struct{ a, b int }

// network is the fixed (public) wiring of a Benes network.
type network struct {
	size   int
	layers [][]pair
}

// paddedSize returns the smallest power of two >= n (1 for n <= 1).
func paddedSize(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// depth returns the number of layers of B(m), m a power of two.
func depth(m int) int {
	if m <= 1 {
		return 0
	}
	return 2*bits.Len(uint(m)) - 3 // 2 log2 m - 1
}

// numSwitches returns the number of switches of B(m), m a power of two.
func numSwitches(m int) int { return depth(m) * m / 2 }

// newNetwork builds B(size); size must be a power of two.
func newNetwork(size int) *network {
	nw := &network{size: size, layers: make([][]pair, depth(size))}
	for i := range nw.layers {
		nw.layers[i] = make([]pair, 0, size/2)
	}
	slots := make([]int, size)
	for i := range slots {
		slots[i] = i
	}
	nw.build(slots, 0)
	return nw
}

func (nw *network) build(s []int, off int) {
	m := len(s)
	switch m {
	case 1:
		return
	case 2:
		nw.layers[off] = append(nw.layers[off], pair{s[0], s[1]})
		return
	}
	h := m / 2
	up, down := make([]int, h), make([]int, h)
	for i := 0; i < h; i++ {
		nw.layers[off] = append(nw.layers[off], pair{s[2*i], s[2*i+1]})
		up[i], down[i] = s[2*i], s[2*i+1]
	}
	nw.build(up, off+1)
	nw.build(down, off+1)
	last := off + depth(m) - 1
	for i := 0; i < h; i++ {
		nw.layers[last] = append(nw.layers[last], pair{s[2*i], s[2*i+1]})
	}
}

// route returns the switch bits, layer by layer in the order of
// newNetwork(len(src)).layers, that make the network realize
// out[j] = in[src[j]]; src must be a permutation of 0..len(src)-1 and
// len(src) a power of two. It uses the looping algorithm.
func route(src []int) [][]bool {
	m := len(src)
	out := make([][]bool, depth(m))
	for i := range out {
		out[i] = make([]bool, 0, m/2)
	}
	routeInto(src, 0, out)
	return out
}

func routeInto(src []int, off int, out [][]bool) {
	m := len(src)
	switch m {
	case 1:
		return
	case 2:
		out[off] = append(out[off], src[0] == 1)
		return
	}
	inv := make([]int, m)
	for j, x := range src {
		inv[x] = j
	}
	// outUp[j]: output j is fed by the upper subnetwork; inUp[x]: input x
	// goes to the upper subnetwork. Outputs 2k, 2k+1 share a last-layer
	// switch and inputs 2i, 2i+1 a first-layer switch, so each pair is
	// split between the subnetworks. Follow each cycle of these
	// constraints: output j up, so its input src[j] up, so that input's
	// partner down, so the output it feeds down, so that output's partner up.
	outUp := make([]bool, m)
	outSet := make([]bool, m)
	inUp := make([]bool, m)
	for k := 0; k < m; k += 2 {
		for j := k; !outSet[j]; {
			outSet[j], outUp[j] = true, true
			x := src[j]
			inUp[x] = true
			j2 := inv[x^1]
			outSet[j2] = true
			j = j2 ^ 1
		}
	}
	h := m / 2
	up, down := make([]int, h), make([]int, h)
	for j := 0; j < m; j++ {
		if outUp[j] {
			up[j/2] = src[j] / 2
		} else {
			down[j/2] = src[j] / 2
		}
	}
	for i := 0; i < h; i++ {
		out[off] = append(out[off], !inUp[2*i])
	}
	routeInto(up, off+1, out)
	routeInto(down, off+1, out)
	last := off + depth(m) - 1
	for k := 0; k < h; k++ {
		out[last] = append(out[last], !outUp[2*k])
	}
}

// sourceOf returns the routing target of the network of size >= len(perm)
// for the scatter permutation perm (out[perm[i]] = in[i]): src[j] = i with
// perm[i] = j for real items, and src[j] = j for the padding slots, so the
// dummies stay in place and the real items move exactly by perm.
func sourceOf(perm []int, size int) []int {
	src := make([]int, size)
	for i, j := range perm {
		src[j] = i
	}
	for j := len(perm); j < size; j++ {
		src[j] = j
	}
	return src
}

package shuffle

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// evalNetwork applies the switches to the slot values: the plaintext
// meaning of the network.
func evalNetwork(nw *network, bits [][]bool, vals []int) []int {
	out := append([]int(nil), vals...)
	for l, layer := range nw.layers {
		for i, sw := range layer {
			if bits[l][i] {
				out[sw.a], out[sw.b] = out[sw.b], out[sw.a]
			}
		}
	}
	return out
}

// permutations calls f with every permutation of 0..n-1 (Heap's algorithm).
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	c := make([]int, n)
	f(p)
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				p[0], p[i] = p[i], p[0]
			} else {
				p[c[i]], p[i] = p[i], p[c[i]]
			}
			f(p)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// checkRoute routes src on B(len(src)) and checks the result realizes
// out[j] = in[src[j]] with the right shape.
func checkRoute(t *testing.T, src []int) {
	t.Helper()
	m := len(src)
	nw := newNetwork(m)
	bits := route(src)
	if len(bits) != len(nw.layers) {
		t.Fatalf("m=%d: %d bit layers for %d layers", m, len(bits), len(nw.layers))
	}
	for l := range bits {
		if len(bits[l]) != len(nw.layers[l]) || len(bits[l]) != m/2 {
			t.Fatalf("m=%d: layer %d has %d bits, %d switches", m, l, len(bits[l]), len(nw.layers[l]))
		}
	}
	got := evalNetwork(nw, bits, identity(m))
	for j := range got {
		if got[j] != src[j] {
			t.Fatalf("m=%d src=%v: slot %d holds input %d", m, src, j, got[j])
		}
	}
}

func TestNetworkShape(t *testing.T) {
	for _, tc := range []struct{ n, size, layers, switches int }{
		{0, 1, 0, 0}, {1, 1, 0, 0}, {2, 2, 1, 1}, {3, 4, 3, 6}, {4, 4, 3, 6},
		{5, 8, 5, 20}, {128, 128, 13, 832}, {300, 512, 17, 4352}, {512, 512, 17, 4352},
		{4096, 4096, 23, 47104},
	} {
		size := paddedSize(tc.n)
		nw := newNetwork(size)
		if size != tc.size || len(nw.layers) != tc.layers || numSwitches(size) != tc.switches {
			t.Errorf("n=%d: size %d, %d layers, %d switches; want %d, %d, %d",
				tc.n, size, len(nw.layers), numSwitches(size), tc.size, tc.layers, tc.switches)
		}
		// Every layer touches every slot once; all-zero bits are the identity.
		for l, layer := range nw.layers {
			seen := make([]bool, size)
			for _, sw := range layer {
				if seen[sw.a] || seen[sw.b] || sw.a == sw.b {
					t.Fatalf("n=%d: layer %d uses a slot twice", tc.n, l)
				}
				seen[sw.a], seen[sw.b] = true, true
			}
		}
		zero := make([][]bool, len(nw.layers))
		for l := range zero {
			zero[l] = make([]bool, size/2)
		}
		for j, x := range evalNetwork(nw, zero, identity(size)) {
			if x != j {
				t.Fatalf("n=%d: straight network moves %d to %d", tc.n, x, j)
			}
		}
	}
}

// TestRouteExhaustive routes every permutation of every size up to 8 (the
// padded size of n <= 6, and beyond).
func TestRouteExhaustive(t *testing.T) {
	for _, m := range []int{1, 2, 4, 8} {
		count := 0
		permutations(m, func(p []int) {
			checkRoute(t, p)
			count++
		})
		t.Logf("m=%d: %d permutations routed", m, count)
	}
}

// TestRoutePadded routes every scatter permutation of n <= 6 items through
// the padded network and checks the real items move by perm and the
// dummies stay.
func TestRoutePadded(t *testing.T) {
	for n := 1; n <= 6; n++ {
		size := paddedSize(n)
		nw := newNetwork(size)
		permutations(n, func(perm []int) {
			src := sourceOf(perm, size)
			got := evalNetwork(nw, route(src), identity(size))
			for i, j := range perm {
				if got[j] != i {
					t.Fatalf("n=%d perm=%v: item %d not at %d (%v)", n, perm, i, j, got)
				}
			}
			for j := n; j < size; j++ {
				if got[j] != j {
					t.Fatalf("n=%d perm=%v: dummy moved (%v)", n, perm, got)
				}
			}
		})
	}
}

func TestRouteRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, m := range []int{16, 64, 128, 512, 1024, 4096} {
		for trial := 0; trial < 10; trial++ {
			src := r.Perm(m)
			if trial == 0 {
				src = identity(m)
			}
			if trial == 1 { // reversal
				for j := range src {
					src[j] = m - 1 - j
				}
			}
			t.Run(fmt.Sprintf("m=%d/%d", m, trial), func(t *testing.T) { checkRoute(t, src) })
		}
	}
}

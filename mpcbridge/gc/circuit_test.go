package gc

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
)

// computePlain evaluates cc in the clear with the library's
// circuit.Compute, on the garbler's and evaluator's input bits as Garble and
// Evaluate prepare them.
func computePlain(t *testing.T, p Params, cc *compiled, c, v []uint64, theta, beta uint64) (keep, high []bool) {
	t.Helper()
	k, top, mask := p.k, uint64(1)<<uint(p.k-1), p.mask()
	gIn, eIn := new(big.Int), new(big.Int)
	set := func(z *big.Int, off int, x uint64) {
		for i := 0; i < k; i++ {
			z.SetBit(z, off+i, uint(x>>uint(i)&1))
		}
	}
	for j := 0; j < cc.bucket; j++ {
		var cj, vj uint64
		if j < len(c) {
			cj, vj = c[j], v[j]
		}
		set(gIn, j*k, (vj+top)&mask)
		set(eIn, j*k, cj&mask)
	}
	set(gIn, cc.bucket*k, ^(theta^top)&mask)
	set(gIn, cc.bucket*k+k, ^(beta^top)&mask)
	out, err := cc.circ.Compute([]*big.Int{gIn, eIn})
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < len(c); j++ {
		keep = append(keep, out[0].Bit(j) == 1)
		high = append(high, out[1].Bit(j) == 1)
	}
	return keep, high
}

// TestCircuitPlain checks the circuit gate by gate against the plaintext
// rule, without cryptography: exhaustively for small K, on edge and random
// values for the others.
func TestCircuitPlain(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{2, 3, 4, 8, 17, 32, 33, 63, 64} {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) {
			p := mustParams(t, ParamsLiteral{K: k})
			const bucket = 16
			cc, err := compile(k, bucket)
			if err != nil {
				t.Fatal(err)
			}
			check := func(c, v []uint64, theta, beta uint64) {
				keep, high := computePlain(t, p, cc, c, v, theta, beta)
				for j := range c {
					if keep[j] != p.Greater(c[j]+v[j], theta) || high[j] != (p.Greater(c[j]+v[j], beta) && p.Greater(c[j]+v[j], theta)) {
						t.Fatalf("c=%#x v=%#x θ=%#x β=%#x: keep=%v high=%v", c[j], v[j], theta, beta, keep[j], high[j])
					}
				}
			}
			if k <= 4 {
				// Every (c, v, θ) with β = θ+1.
				n := uint64(1) << uint(k)
				for theta := uint64(0); theta < n; theta++ {
					var c, v []uint64
					for x := uint64(0); x < n; x++ {
						for y := uint64(0); y < n; y++ {
							c, v = append(c, x), append(v, y)
							if len(c) == bucket {
								check(c, v, theta, theta+1)
								c, v = c[:0], v[:0]
							}
						}
					}
					if len(c) > 0 {
						check(c, v, theta, theta+1)
					}
				}
				return
			}
			for trial := 0; trial < 40; trial++ {
				theta, beta := int64(r.Uint64()), int64(r.Uint64())
				if trial%4 == 0 {
					beta = theta
				}
				theta, beta = wrap(theta, k), wrap(beta, k)
				c, v := split(r, k, scoresFor(r, k, bucket-trial%3, theta, beta))
				check(c, v, uint64(theta)|garbage(r, k), uint64(beta))
			}
		})
	}
}

// TestCircuitSizes checks and reports the circuit size per bucket.
func TestCircuitSizes(t *testing.T) {
	cache := NewCache()
	for _, k := range []int{64, 32} {
		p := mustParams(t, ParamsLiteral{K: k})
		for _, b := range p.Buckets() {
			st, err := cache.Stats(p, b)
			if err != nil {
				t.Fatal(err)
			}
			if st.NonXOR != b*3*k || st.Gates != st.XOR+st.NonXOR || st.TableBytes != 32*st.NonXOR ||
				st.GarblerInputs != (b+2)*k || st.EvaluatorInputs != b*k || st.Outputs != 2*b {
				t.Errorf("K=%d bucket=%d: %+v", k, b, st)
			}
			t.Logf("K=%d bucket=%3d: gates=%7d XOR=%7d non-XOR=%6d wires=%7d tables=%8d B",
				k, b, st.Gates, st.XOR, st.NonXOR, st.Wires, st.TableBytes)
		}
	}
	if _, err := cache.Stats(mustParams(t, DefaultParamsLiteral), 100); err == nil {
		t.Error("Stats accepted a size that is not a bucket")
	}
	if _, err := cache.Stats(Params{}, 8); err == nil {
		t.Error("Stats accepted zero Params")
	}
}

// TestCacheConcurrent compiles the same circuits from many goroutines; run
// with -race.
func TestCacheConcurrent(t *testing.T) {
	cache := NewCache()
	const n = 8
	got := make([]*compiled, n)
	done := make(chan int)
	for i := 0; i < n; i++ {
		go func() {
			c, err := cache.get(32, 64)
			if err != nil {
				t.Error(err)
			}
			got[i] = c
			done <- i
		}()
	}
	for i := 0; i < n; i++ {
		<-done
	}
	for i := 1; i < n; i++ {
		if got[i] != got[0] {
			t.Fatal("cache compiled the same circuit twice")
		}
	}
	var nilCache *Cache
	if a, _ := nilCache.get(8, 8); a == nil {
		t.Fatal("nil cache returned no circuit")
	}
}

package shuffle

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/markkurossi/mpc/ot"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// chiLimit255 is about the 0.9999 quantile of chi-square with 255 degrees of
// freedom (Wilson-Hilferty: 347.7).
const chiLimit255 = 350

// byteStats returns the chi-square statistic of b's byte histogram against
// uniform, and b's mean byte value.
func byteStats(b []byte) (chi, mean float64) {
	counts := make([]int, 256)
	var sum float64
	for _, x := range b {
		counts[x]++
		sum += float64(x)
	}
	return chiSquare(counts, len(b)), sum / float64(len(b))
}

// checkUniform fails if b does not look like uniform bytes: its byte
// histogram (chi-square) or its mean (6 standard deviations of 127.5).
func checkUniform(t *testing.T, what string, b []byte) (mean float64) {
	t.Helper()
	if len(b) < 4096 {
		t.Fatalf("%s: only %d bytes", what, len(b))
	}
	chi, mean := byteStats(b)
	sd := math.Sqrt((256*256 - 1) / 12.0 / float64(len(b)))
	if chi > chiLimit255 || math.Abs(mean-127.5) > 6*sd {
		t.Errorf("%s: %d bytes, chi-square %.1f (limit %d), mean %.2f (127.5 ± %.2f): not uniform", what, len(b), chi, chiLimit255, mean, 6*sd)
	}
	t.Logf("%s: %d bytes, chi-square %.1f, mean %.2f", what, len(b), chi, mean)
	return mean
}

// transcript runs one permute-and-share and returns what each side wrote.
// The random sources are seeded, so the statistical checks on the
// transcripts are repeatable.
func transcript(t *testing.T, perm []int, ap, aq [][]uint64) (fromP, fromQ []byte) {
	t.Helper()
	a, b := nettest.Pair(t, "pipe")
	pc, qc := &nettest.CountConn{Conn: a, Keep: true}, &nettest.CountConn{Conn: b, Keep: true}
	pr, qr := runPairRand(testCtx(t), Config{}, pc, qc, perm, ap, aq,
		rand.NewChaCha8([32]byte{'P', byte(perm[0])}), rand.NewChaCha8([32]byte{'Q', byte(perm[0])}))
	checkPermuted(t, perm, ap, aq, pr, qr)
	return pc.Sent.Bytes(), qc.Sent.Bytes()
}

// TestViewOfPermuter checks that what the permuter P receives looks uniform
// and has the same size whatever the assistant's input is: all-zero and
// all-ones shares (the extreme structured inputs) give masked inputs and
// corrections with uniform byte histograms and equal means.
func TestViewOfPermuter(t *testing.T) {
	const n, w = 64, 16
	size := paddedSize(n)
	sw := numSwitches(size)
	r := rand.New(rand.NewPCG(11, 12))
	perm := r.Perm(n)
	ap := randomRows(r, n, w)
	var sizes []int
	var means [2][2]float64
	for i, x := range []uint64{0, math.MaxUint64} {
		_, fromQ := transcript(t, perm, ap, constRows(n, w, x))
		// hello, m_in, base-OT points, ROT seed, corrections.
		want := helloSize + 8*n*w + ot.K*pointSize + labelSize + 8*sw*w
		if len(fromQ) != want {
			t.Fatalf("assistant sent %d bytes, want %d", len(fromQ), want)
		}
		sizes = append(sizes, len(fromQ))
		mIn := fromQ[helloSize : helloSize+8*n*w]
		corr := fromQ[len(fromQ)-8*sw*w:]
		name := map[uint64]string{0: "zero", math.MaxUint64: "ones"}[x]
		means[i][0] = checkUniform(t, "m_in for "+name+" input", mIn)
		means[i][1] = checkUniform(t, "corrections for "+name+" input", corr)
		// No masked word equals the input word (a failed mask would).
		hits := 0
		for k := 0; k < n*w; k++ {
			if binary.LittleEndian.Uint64(mIn[8*k:]) == x {
				hits++
			}
		}
		if hits > 0 {
			t.Errorf("%s input: %d masked words equal the input", name, hits)
		}
	}
	for k, what := range []string{"m_in", "corrections"} {
		if d := math.Abs(means[0][k] - means[1][k]); d > 6 {
			t.Errorf("%s: mean bytes differ by %.2f between the inputs", what, d)
		}
	}
}

// TestViewOfAssistant checks that what the assistant Q receives does not
// depend on the permutation: the same size for the identity and the
// reversal, and uniform base-OT ciphertexts and IKNP matrix for both.
func TestViewOfAssistant(t *testing.T) {
	const n, w = 64, 2
	size := paddedSize(n)
	sw := numSwitches(size)
	r := rand.New(rand.NewPCG(13, 14))
	ap, aq := randomRows(r, n, w), randomRows(r, n, w)
	rev := make([]int, n)
	for i := range rev {
		rev[i] = n - 1 - i
	}
	chunkBytes := (sw + 7) / 8 * ot.K // one chunk: sw <= 512 rows
	for _, perm := range [][]int{identity(n), rev} {
		fromP, _ := transcript(t, perm, ap, aq)
		want := helloSize + ot.K*coCipherSize + 4 + chunkBytes
		if len(fromP) != want {
			t.Fatalf("permuter sent %d bytes, want %d", len(fromP), want)
		}
		cts := fromP[helloSize : helloSize+ot.K*coCipherSize]
		if l := binary.BigEndian.Uint32(fromP[helloSize+len(cts):]); int(l) != chunkBytes {
			t.Fatalf("chunk length %d, want %d", l, chunkBytes)
		}
		u := fromP[helloSize+len(cts)+4:]
		checkUniform(t, "base-OT ciphertexts", cts)
		checkUniform(t, "IKNP matrix", u)
	}
}

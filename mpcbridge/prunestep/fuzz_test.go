package prunestep

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// FuzzDecodeRequest: decodeRequest never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []request{
		{op: RequestPruneShares, layer: 4, rows: 33, cols: 768},
		{op: RequestRevealShares, count: 3},
		{op: RequestRevealLabelShares, count: 10},
	} {
		r.fp[0] = 0xab
		p := r.marshal()
		f.Add(p)
		f.Add(p[:len(p)-1])
		bad := bytes.Clone(p)
		bad[0] = 2
		f.Add(bad)
		bad = bytes.Clone(p)
		bad[1] = 2 // the removed ciphertext path's prune
		f.Add(bad)
		bad = bytes.Clone(p)
		bad[50] = 1 // a field of the removed ciphertext path's prune
		f.Add(bad)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRequest(p)
		if err != nil {
			return
		}
		if q := r.marshal(); !bytes.Equal(q, p) {
			t.Fatalf("decode(%x) = %+v re-encodes to %x", p, r, q)
		}
		if r.op < RequestPruneShares || r.op > RequestRevealLabelShares {
			t.Fatalf("accepted operation %v", r.op)
		}
	})
}

// fuzzSlots is the vector size of the reveal fuzz targets.
const fuzzSlots = 1024

// FuzzDecodeRevealShares: the client's decoder of MsgRevealShares never
// panics, refuses with ErrMalformed, and what it accepts has k distinct
// slots in range and re-encodes to the same bytes.
func FuzzDecodeRevealShares(f *testing.F) {
	v := make(share.Vector, fuzzSlots)
	for i := range v {
		v[i] = share.Int128FromInt64(int64(i*i) - 5000)
	}
	for _, slots := range [][]int{{0}, {3, 1000}, {fuzzSlots - 1, 0, 7}} {
		p := encodeRevealShares(slots, v)
		f.Add(p, uint16(len(slots)))
		f.Add(p[:len(p)-1], uint16(len(slots)))
		f.Add(p, uint16(len(slots)+1))
	}
	f.Add(encodeRevealShares([]int{5, 5}, v), uint16(2))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, p []byte, k uint16) {
		slots, shares, err := decodeRevealShares(p, int(k), fuzzSlots)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(slots) != int(k) || len(shares) != int(k) || checkRevealSlots(slots, fuzzSlots) != nil {
			t.Fatalf("accepted slots %v for k = %d", slots, k)
		}
		w := make(share.Vector, fuzzSlots)
		for i, j := range slots {
			w[j] = shares[i]
		}
		if q := encodeRevealShares(slots, w); !bytes.Equal(q, p) {
			t.Fatalf("accepted shares re-encode differently")
		}
	})
}

// TestRequestRoundTrip checks the request codec on the operations.
func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []request{
		{op: RequestPruneShares, layer: 7, rows: 129, cols: 768, fp: [32]byte{7}},
		{op: RequestRevealShares, count: 1, fp: [32]byte{8}},
		{op: RequestRevealShares, count: MaxRevealSlots, fp: [32]byte{8}},
		{op: RequestRevealLabelShares, count: MaxLabels, fp: [32]byte{9}},
	} {
		got, err := decodeRequest(r.marshal())
		if err != nil {
			t.Fatalf("%v: %v", r.op, err)
		}
		if got != r {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
	// withByte returns r's encoding with byte i set to v.
	withByte := func(r request, i int, v byte) []byte {
		p := r.marshal()
		p[i] = v
		return p
	}
	prune := request{op: RequestPruneShares, rows: 4, cols: 4}
	for name, p := range map[string][]byte{
		"short":           make([]byte, requestSize-1),
		"version":         append([]byte{2}, make([]byte, requestSize-1)...),
		"op":              append([]byte{msgVersion, 0}, make([]byte, requestSize-2)...),
		"reserved":        withByte(prune, 2, 1),
		"removed refresh": withByte(prune, 1, 1),
		"removed prune":   withByte(prune, 1, 2),
		"removed reveal":  withByte(prune, 1, 5),
		"removed fields":  withByte(prune, 52, 1),
		"shares no rows":  (&request{op: RequestPruneShares, cols: 4}).marshal(),
		"shares no cols":  (&request{op: RequestPruneShares, rows: 4}).marshal(),
		"one label":       (&request{op: RequestRevealLabelShares, count: 1}).marshal(),
		"many labels":     (&request{op: RequestRevealLabelShares, count: MaxLabels + 1}).marshal(),
		"no logits":       (&request{op: RequestRevealShares}).marshal(),
		"many logits":     (&request{op: RequestRevealShares, count: MaxRevealSlots + 1}).marshal(),
	} {
		if _, err := decodeRequest(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzMatchRows: a client's check of a prune-on-shares request against its
// input never panics, refuses with ErrMismatch or ErrMalformed, and
// accepts only a request for the input's layer, n and d with the client's
// fingerprint.
func FuzzMatchRows(f *testing.F) {
	tc := newTestContext(f, defaultLiteral)
	in := Rows{Layer: 3, X: make(share.Vector, 5*8), Cols: 8, Scores: make(share.Vector, 5)}
	fp := tc.client.Fingerprint()
	for _, r := range []request{
		{op: RequestPruneShares, fp: fp, layer: 3, rows: 5, cols: 8},
		{op: RequestPruneShares, fp: fp, layer: 3, rows: 5, cols: 9},
		{op: RequestPruneShares, fp: fp, layer: 2, rows: 5, cols: 8},
		{op: RequestPruneShares, layer: 3, rows: 5, cols: 8},
		{op: RequestRevealShares, fp: fp, count: 2},
	} {
		f.Add(r.marshal())
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		req, err := decodeRequest(p)
		if err == nil {
			err = tc.client.checkRequest(&req)
		}
		if err == nil {
			err = tc.client.matchRows(req, in)
		}
		if err != nil {
			if !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is neither ErrMismatch nor ErrMalformed", err)
			}
			return
		}
		if req.op != RequestPruneShares || req.fp != fp || req.layer != 3 || req.rows != 5 || req.cols != 8 {
			t.Fatalf("accepted %+v for a 5 x 8 input of layer 3", req)
		}
	})
}

// FuzzDecodeAccept: the server's check of MsgAccept never panics, accepts
// only the empty payload and refuses the rest with ErrMalformed.
func FuzzDecodeAccept(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, p []byte) {
		err := decodeAccept(p)
		if (err == nil) != (len(p) == 0) || err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("decodeAccept(%x) = %v", p, err)
		}
	})
}

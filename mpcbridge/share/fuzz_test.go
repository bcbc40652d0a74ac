package share

import (
	"bytes"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// The fuzz targets run at N = 2^4 (Interactive14's modulus chain), where a
// valid message is a few hundred bytes and one run takes microseconds: the
// decoders' code does not depend on N.
var (
	fuzzOnce sync.Once
	fuzzTC   *testContext
)

func fuzzContext(tb testing.TB) *testContext {
	fuzzOnce.Do(func() {
		params, err := hefloat.NewParametersFromLiteral(hefloat.ParametersLiteral{
			LogN:            4,
			LogQ:            []int{46, 33, 33, 33, 33, 33},
			LogP:            []int{60},
			LogDefaultScale: 33,
		})
		if err != nil {
			tb.Fatal(err)
		}
		p, err := NewParameters(ParametersLiteral{LogBound: 4, MaxBatch: 4})
		if err != nil {
			tb.Fatal(err)
		}
		kgen := rlwe.NewKeyGenerator(params)
		sk, pk := kgen.GenKeyPairNew()
		server, err := NewServer(params, pk, p, nil)
		if err != nil {
			tb.Fatal(err)
		}
		client, err := NewClient(params, sk, p, nil)
		if err != nil {
			tb.Fatal(err)
		}
		fuzzTC = &testContext{name: "fuzz", params: params, p: p, sk: sk, pk: pk, server: server, client: client,
			ecd: hefloat.NewEncoder(params), enc: rlwe.NewEncryptor(params, pk), dec: rlwe.NewDecryptor(params, sk), eval: hefloat.NewEvaluator(params, nil)}
	})
	if fuzzTC == nil {
		tb.Fatal("no fuzz context")
	}
	return fuzzTC
}

// FuzzDecodeMasked feeds arbitrary payloads to the client's decoder of
// MsgEncToShares and to the checks after it (level, mask
// width, decryption, range, decoding): errors are fine, panics are not, and
// every accepted message must re-encode to the same bytes (one encoding per
// message).
func FuzzDecodeMasked(f *testing.F) {
	tc := fuzzContext(f)
	for _, k := range []int{1, 2} {
		valid := tc.maskedMessage(f, k)
		f.Add(valid)
		f.Add(valid[:len(valid)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 4, 0, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		cts, err := tc.client.ri.decodeMasked(payload, tc.p.MaxBatch())
		if err != nil {
			return
		}
		if again := tc.client.ri.encodeMasked(cts); !bytes.Equal(again, payload) {
			t.Fatalf("accepted message re-encodes differently (%d vs %d bytes)", len(again), len(payload))
		}
		for i := range cts {
			if o, err := tc.client.open(&cts[i]); err == nil {
				if cts[i].batched {
					_, _ = tc.client.slotShares(o)
				}
			}
		}
	})
}

// FuzzDecodeSeeded feeds arbitrary payloads to the server's decoder of
// MsgSharesToEnc, the c1 expansion and the combination
// with the server's shares; accepted messages must re-encode identically.
func FuzzDecodeSeeded(f *testing.F) {
	tc := fuzzContext(f)
	for _, level := range []int{2, tc.params.MaxLevel()} {
		rc := &rawConn{}
		v := Vector{Int128FromInt64(123456789), Int128FromInt64(-7)}
		if err := tc.client.SharesToEnc(bg(), rc, []Vector{v, v}, level, tc.params.DefaultScale()); err != nil {
			f.Fatal(err)
		}
		valid := rc.sent[MsgSharesToEnc]
		f.Add(valid)
		f.Add(valid[:len(valid)/3])
	}
	f.Add([]byte{1, 4, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, payload []byte) {
		cts, err := tc.server.ri.decodeSeeded(payload, tc.p.MaxBatch())
		if err != nil {
			return
		}
		if again := tc.server.ri.encodeSeeded(cts); !bytes.Equal(again, payload) {
			t.Fatalf("accepted message re-encodes differently (%d vs %d bytes)", len(again), len(payload))
		}
		shares := make([]Vector, len(cts))
		for i := range shares {
			shares[i] = Vector{Int128FromInt64(1)}
		}
		if len(cts) > 0 {
			_, _ = tc.server.combine(bg(), cts, shares, cts[0].level, cts[0].scale)
		}
	})
}

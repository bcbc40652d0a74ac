package ckks

import (
	"bytes"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// TestKeyReceiver: the keys of a session round-trip through the receiver,
// the expanded relinearization key is the one Lattigo's generator makes
// from the seed and works, and wrong sizes, truncated and corrupted keys
// are errors.
func TestKeyReceiver(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	keys := GenSecretKeys(tc.params)
	pk, err := keys.MarshalPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	rlk, err := keys.MarshalRelinKey()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewKeyReceiver(tc.params)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.EvaluationKeys(); err == nil {
		t.Error("incomplete keys accepted")
	}
	corrupt := bytes.Clone(pk)
	for i := 0; i < 64; i++ {
		corrupt[i] = 0xff
	}
	for name, p := range map[string][]byte{"short": pk[:len(pk)-1], "long": append(bytes.Clone(pk), 0), "empty": nil, "corrupted": corrupt} {
		if err := r.SetPublicKey(p); err == nil {
			t.Errorf("%s public key accepted", name)
		}
	}
	for name, p := range map[string][]byte{"short": rlk[:len(rlk)-1], "long": append(bytes.Clone(rlk), 0), "seed only": rlk[:SeedSize], "empty": nil} {
		if err := r.SetRelinKey(p); err == nil {
			t.Errorf("%s relinearization key accepted", name)
		}
	}
	if err := r.SetPublicKey(pk); err != nil {
		t.Fatal(err)
	}
	if _, err := r.EvaluationKeys(); err == nil {
		t.Error("keys without the relinearization key accepted")
	}
	if err := r.SetRelinKey(rlk); err != nil {
		t.Fatal(err)
	}
	if !r.PublicKey().Equal(keys.PK) {
		t.Error("public key differs after the round trip")
	}
	// The expanded uniform halves are those Lattigo's generator draws from
	// the seed (the b halves carry the client's fresh noise, so only the a
	// halves can be regenerated).
	kg, err := keys.generatorFor(rlk[:SeedSize])
	if err != nil {
		t.Fatal(err)
	}
	want := kg.GenRelinearizationKeyNew(keys.SK)
	for a, row := range want.Value {
		for b, v := range row {
			if !r.rlk.Value[a][b][1].Equal(&v[1]) {
				t.Fatalf("uniform half (%d, %d) differs from the generator's", a, b)
			}
		}
	}
	// The keys work: a product relinearized with the expanded key decrypts
	// to the product of the messages.
	evk, err := r.EvaluationKeys()
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]float64, tc.params.MaxSlots())
	for i := range msg {
		msg[i] = float64(i%17) / 17
	}
	he, err := keys.Client()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := he.EncryptVector(msg, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	sq, err := hefloat.NewEvaluator(tc.params, evk).MulRelinNew(ct, ct)
	if err != nil {
		t.Fatal(err)
	}
	got, err := he.DecryptVector(sq)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msg {
		if d := math.Abs(got[i] - msg[i]*msg[i]); d > 1e-4 {
			t.Fatalf("slot %d: MulRelin with the expanded key gave %g, want %g", i, got[i], msg[i]*msg[i])
		}
	}
	if full := rlwe.NewRelinearizationKey(tc.params).BinarySize(); len(rlk) > full/2+SeedSize+256 {
		t.Errorf("seeded relinearization key of %d bytes, full key %d", len(rlk), full)
	}
}

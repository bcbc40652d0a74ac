package ckks

import (
	"bytes"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// TestKeyReceiver: the keys of a session round-trip through the receiver,
// and wrong sizes, wrong elements, truncated and corrupted keys are errors.
func TestKeyReceiver(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	keys := GenSecretKeys(tc.params)
	plan := tc.params.GaloisElements([]int{1, 16})
	pk, err := keys.MarshalPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	rlk, err := keys.MarshalRelinKey()
	if err != nil {
		t.Fatal(err)
	}
	gk0, err := keys.MarshalGaloisKey(plan[0])
	if err != nil {
		t.Fatal(err)
	}
	gk1, err := keys.MarshalGaloisKey(plan[1])
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewKeyReceiver(tc.params, plan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.EvaluationKeys(); err == nil {
		t.Error("incomplete keys accepted")
	}
	for name, p := range map[string][]byte{"short": pk[:len(pk)-1], "long": append(bytes.Clone(pk), 0), "empty": nil} {
		if err := r.SetPublicKey(p); err == nil {
			t.Errorf("%s public key accepted", name)
		}
	}
	corrupt := bytes.Clone(pk)
	for i := 0; i < 64; i++ {
		corrupt[i] = 0xff
	}
	if err := r.SetPublicKey(corrupt); err == nil {
		t.Error("corrupted public key accepted")
	}
	if err := r.SetPublicKey(pk); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRelinKey(rlk); err != nil {
		t.Fatal(err)
	}
	if err := r.AddGaloisKey(gk1); err == nil {
		t.Error("a Galois key out of the plan's order was accepted")
	}
	if err := r.AddGaloisKey(gk0); err != nil {
		t.Fatal(err)
	}
	if err := r.AddGaloisKey(gk1); err != nil {
		t.Fatal(err)
	}
	if err := r.AddGaloisKey(gk1); err == nil {
		t.Error("a key beyond the plan was accepted")
	}
	if _, err := r.EvaluationKeys(); err != nil {
		t.Fatal(err)
	}
	// A smaller block's plan: only the new element is expected next, and
	// the key set for it holds exactly its plan's keys.
	next := tc.params.GaloisElements([]int{16, 32})
	if added := r.Extend(next); len(added) != 1 || added[0] != next[1] {
		t.Fatalf("Extend(%v) = %v, want [%d]", next, added, next[1])
	}
	if _, err := r.EvaluationKeysFor(next, true); err == nil {
		t.Error("a key set with a missing key was returned")
	}
	gk2, err := keys.MarshalGaloisKey(next[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddGaloisKey(gk2); err != nil {
		t.Fatal(err)
	}
	if len(r.Extend(next)) != 0 {
		t.Error("Extend asked again for keys already planned")
	}
	small, err := r.EvaluationKeysFor(next, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := small.GetGaloisKeysList(); len(got) != 2 {
		t.Errorf("key set for the new plan holds elements %v, want %v", got, next)
	}
	if len(r.gks) != 2 || r.Remaining() != 0 {
		t.Errorf("after retaining the new plan the receiver holds %d keys, %d remaining", len(r.gks), r.Remaining())
	}
	if _, err := r.EvaluationKeysFor(plan, false); err == nil {
		t.Error("a dropped key was still served")
	}
	r, err = NewKeyReceiver(tc.params, plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetPublicKey(pk); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRelinKey(rlk); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{gk0, gk1} {
		if err := r.AddGaloisKey(p); err != nil {
			t.Fatal(err)
		}
	}
	if !r.PublicKey().Equal(keys.PK) {
		t.Error("public key differs after the round trip")
	}
	// The expanded uniform halves are those Lattigo's generator draws from
	// the seed (the b halves carry the client's fresh noise, so only the a
	// halves can be regenerated), and the keys work: a rotation with the
	// expanded key decrypts to the rotated message.
	for i, p := range [][]byte{gk0, gk1} {
		kg, err := keys.generatorFor(p[:SeedSize])
		if err != nil {
			t.Fatal(err)
		}
		want := kg.GenGaloisKeyNew(plan[i], keys.SK)
		for a, row := range want.Value {
			for b, v := range row {
				if !r.gks[i].Value[a][b][1].Equal(&v[1]) {
					t.Fatalf("Galois key %d: uniform half (%d, %d) differs from the generator's", i, a, b)
				}
			}
		}
	}
	evk, err := r.EvaluationKeys()
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]float64, tc.params.MaxSlots())
	for i := range msg {
		msg[i] = float64(i%17) / 17
	}
	ct, err := tc.client.EncryptVector(msg, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	he, err := keys.Client()
	if err != nil {
		t.Fatal(err)
	}
	if ct, err = he.EncryptVector(msg, tc.params.MaxLevel()); err != nil {
		t.Fatal(err)
	}
	eval := hefloat.NewEvaluator(tc.params, evk)
	rot, err := eval.RotateNew(ct, 16)
	if err != nil {
		t.Fatal(err)
	}
	if rot, err = eval.MulRelinNew(rot, ct); err != nil {
		t.Fatal(err)
	}
	got, err := he.DecryptVector(rot)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msg {
		want := msg[(i+16)%len(msg)] * msg[i]
		if d := math.Abs(got[i] - want); d > 1e-4 {
			t.Fatalf("slot %d: rotate+MulRelin with the expanded keys gave %g, want %g", i, got[i], want)
		}
	}
	if full := rlwe.NewGaloisKey(tc.params).BinarySize(); len(gk0) > full/2+SeedSize+256 {
		t.Errorf("seeded Galois key of %d bytes, full key %d", len(gk0), full)
	}
}

package xof

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/tuneinsight/lattigo/v5/utils/sampling"
)

// TestKnownAnswer pins the stream of the seed 00 01 .. 1f: its first block
// is AES-256 of the zero block under that key (FIPS-197's example key; the
// value below was computed with crypto/aes and is checked against an
// independent evaluation of the counter blocks).
func TestKnownAnswer(t *testing.T) {
	seed := make([]byte, SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	s, err := New(seed)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3*aes.BlockSize+5)
	// Two reads of uneven sizes give the same stream as one.
	if _, err := s.Read(got[:7]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(got[7:]); err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(seed)
	want := make([]byte, 4*aes.BlockSize)
	for i := 0; i < 4; i++ {
		var ctr [aes.BlockSize]byte
		binary.BigEndian.PutUint64(ctr[8:], uint64(i))
		block.Encrypt(want[i*aes.BlockSize:], ctr[:])
	}
	if !bytes.Equal(got, want[:len(got)]) {
		t.Fatalf("stream %x\nwant   %x", got, want[:len(got)])
	}
	const first = "f29000b62a499fd0a9f39a6add2e7780"
	if h := hex.EncodeToString(got[:16]); h != first {
		t.Errorf("first block %s, want %s", h, first)
	}
	var _ sampling.PRNG = s
	if _, err := New(seed[:31]); err == nil {
		t.Error("a short seed was accepted")
	}
}

// BenchmarkStream compares the stream with Lattigo's blake2b KeyedPRNG on
// the size of one Galois key's uniform half at N = 2^14 (about 17 MB).
func BenchmarkStream(b *testing.B) {
	seed := make([]byte, SeedSize)
	buf := make([]byte, 1<<20)
	b.Run("aes256ctr", func(b *testing.B) {
		s, _ := New(seed)
		b.SetBytes(int64(len(buf)))
		for i := 0; i < b.N; i++ {
			s.Read(buf)
		}
	})
	b.Run("lattigo-blake2b", func(b *testing.B) {
		p, _ := sampling.NewKeyedPRNG(seed)
		b.SetBytes(int64(len(buf)))
		for i := 0; i < b.N; i++ {
			p.Read(buf)
		}
	})
}

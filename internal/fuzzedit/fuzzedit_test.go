package fuzzedit

import (
	"bytes"
	"testing"
)

func TestInput(t *testing.T) {
	base := []byte{1, 2, 3, 4}
	tests := []struct {
		name      string
		raw       bool
		data, out []byte
	}{
		{"raw", true, []byte{9, 9}, []byte{9, 9}},
		{"no edit", false, nil, []byte{1, 2, 3, 4}},
		{"cut", false, []byte{0xfe}, []byte{1, 2}},
		{"cut below zero", false, []byte{0x80}, []byte{}},
		{"extend", false, []byte{2}, []byte{1, 2, 3, 4, 0, 0}},
		{"xor at offset", false, []byte{0, 0, 0, 1, 0xff}, []byte{1, 0xfd, 3, 4}},
		{"offset wraps", false, []byte{0, 0, 0, 6, 1}, []byte{1, 2, 2, 4}},
		{"partial edit ignored", false, []byte{0, 0, 0, 1}, []byte{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Input(tc.raw, tc.data, base); !bytes.Equal(got, tc.out) {
				t.Errorf("Input = %v, want %v", got, tc.out)
			}
			if !bytes.Equal(base, []byte{1, 2, 3, 4}) {
				t.Fatalf("base modified: %v", base)
			}
		})
	}
}

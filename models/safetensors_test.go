package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sampleTensors returns a few tensors of different ranks, one empty.
func sampleTensors() []Tensor {
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(name string, shape ...int) Tensor {
		n, _ := numElements(shape)
		data := make([]float64, n)
		for i := range data {
			data[i] = rng.NormFloat64() * 3
		}
		return Tensor{Name: name, Shape: shape, Data: data}
	}
	return []Tensor{mk("b.matrix", 3, 5), mk("a.vector", 7), mk("c.scalar"), mk("d.empty", 0, 4), mk("e.cube", 2, 2, 2)}
}

// encodeSafetensors writes tensors to a byte slice.
func encodeSafetensors(t testing.TB, tensors []Tensor, dtype DType, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, tensors, dtype, md); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSafetensorsRoundTrip(t *testing.T) {
	tests := []struct {
		dtype DType
		round func(float64) float64 // the value the file can hold
	}{
		{F64, func(v float64) float64 { return v }},
		{F32, func(v float64) float64 { return float64(float32(v)) }},
		{F16, func(v float64) float64 { return f16ToFloat64(float64ToF16(v)) }},
	}
	for _, tt := range tests {
		t.Run(string(tt.dtype), func(t *testing.T) {
			in := sampleTensors()
			md := map[string]string{"format": "pt"}
			data := encodeSafetensors(t, in, tt.dtype, md)
			if hl := binary.LittleEndian.Uint64(data); hl%8 != 0 {
				t.Errorf("header length %d is not a multiple of 8", hl)
			}
			st, err := ParseSafetensors(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Metadata(); got["format"] != "pt" || len(got) != 1 {
				t.Errorf("metadata %v", got)
			}
			wantNames := []string{"a.vector", "b.matrix", "c.scalar", "d.empty", "e.cube"}
			if !slices.Equal(st.Names(), wantNames) {
				t.Errorf("names %v, want %v", st.Names(), wantNames)
			}
			for _, want := range in {
				info, ok := st.Info(want.Name)
				if !ok || info.DType != tt.dtype || !slices.Equal(info.Shape, want.Shape) {
					t.Fatalf("info %+v, %v", info, ok)
				}
				got, err := st.Tensor(want.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.Shape, want.Shape) || len(got.Data) != len(want.Data) {
					t.Fatalf("%s: shape %v with %d values, want %v", want.Name, got.Shape, len(got.Data), want.Shape)
				}
				for i, v := range want.Data {
					if got.Data[i] != tt.round(v) {
						t.Fatalf("%s[%d] = %v, want %v", want.Name, i, got.Data[i], tt.round(v))
					}
				}
			}
			if _, err := st.Tensor("missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
				t.Errorf("Tensor(missing) error = %v", err)
			}
		})
	}
}

func TestSafetensorsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := WriteSafetensorsFile(path, sampleTensors(), F32, nil); err != nil {
		t.Fatal(err)
	}
	st, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(st.Metadata()) != 0 {
		t.Errorf("metadata %v, want empty", st.Metadata())
	}
	if _, err := st.Tensor("e.cube"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSafetensors(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("OpenSafetensors of a missing file succeeded")
	}
}

// rawSafetensors assembles a file from a header and a data buffer, with the
// header length given explicitly (-1: the true length).
func rawSafetensors(header string, hlen int64, data []byte) []byte {
	if hlen < 0 {
		hlen = int64(len(header))
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(hlen))
	out = append(out, header...)
	return append(out, data...)
}

func TestSafetensorsBF16AndInts(t *testing.T) {
	// BF16 1.5 is 0x3FC0; -2 is 0xC000. I64 tensors parse but cannot be read.
	data := []byte{0xC0, 0x3F, 0x00, 0xC0, 1, 0, 0, 0, 0, 0, 0, 0}
	hdr := `{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"ids":{"dtype":"I64","shape":[1],"data_offsets":[4,12]}}`
	file := rawSafetensors(hdr, -1, data)
	st, err := ParseSafetensors(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Tensor("b")
	if err != nil || !slices.Equal(b.Data, []float64{1.5, -2}) {
		t.Fatalf("BF16 tensor %v, %v", b.Data, err)
	}
	if _, err := st.Tensor("ids"); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("reading an I64 tensor: error %v", err)
	}
}

func TestSafetensorsCorrupt(t *testing.T) {
	f32 := make([]byte, 8) // room for two F32 values
	tests := []struct {
		name    string
		file    []byte
		wantErr string
	}{
		{"empty file", nil, "shorter than"},
		{"short length", []byte{1, 2, 3}, "shorter than"},
		{"header over limit", rawSafetensors("{}", MaxSafetensorsHeader+1, nil), "exceeds the limit"},
		{"header length huge", rawSafetensors("{}", math.MaxInt64, nil), "exceeds the limit"},
		{"header past end", rawSafetensors("{}", 100, nil), "does not fit"},
		{"header too short", rawSafetensors("{", 1, nil), "does not fit"},
		{"not an object", rawSafetensors(`[1, 2]`, -1, nil), "start with '{'"},
		{"bad JSON", rawSafetensors(`{"a":`, -1, nil), "header"},
		{"invalid UTF-8", rawSafetensors("{\"\xff\":{}}", -1, nil), "UTF-8"},
		{"trailing JSON", rawSafetensors(`{} {}`, -1, nil), "trailing data"},
		{"duplicate name", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, -1, f32), "duplicate"},
		{"duplicate metadata", rawSafetensors(`{"__metadata__":{},"__metadata__":{}}`, -1, nil), "duplicate"},
		{"metadata not strings", rawSafetensors(`{"__metadata__":{"a":1}}`, -1, nil), "__metadata__"},
		{"unknown dtype", rawSafetensors(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}}`, -1, f32[:4]), "unknown dtype"},
		{"missing shape", rawSafetensors(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, -1, f32[:4]), "needs dtype, shape"},
		{"entry not object", rawSafetensors(`{"a":3}`, -1, nil), `tensor "a"`},
		{"negative dim", rawSafetensors(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, -1, f32[:4]), "dimension 0 is -1"},
		{"fractional dim", rawSafetensors(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, -1, f32[:4]), `tensor "a"`},
		{"shape overflow", rawSafetensors(`{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}`, -1, f32[:4]), "too large"},
		{"three offsets", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, -1, f32), "has 3 entries"},
		{"reversed offsets", rawSafetensors(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, -1, f32[:4]), "not an interval"},
		{"size mismatch", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, -1, f32[:4]), "needs 8"},
		{"offsets past end", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, -1, f32[:4]), "4-byte data buffer"},
		{"trailing bytes", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, -1, f32), "4 bytes of a 8-byte"},
		{"gap", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, -1, f32), "gap"},
		{"overlap", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, -1, f32), "overlap"},
		{"too many dims", rawSafetensors(`{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}`, -1, f32[:4]), "rank 17"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSafetensors(bytes.NewReader(tt.file), int64(len(tt.file)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "cannot ParseSafetensors") {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteSafetensorsErrors(t *testing.T) {
	ok := Tensor{Name: "a", Shape: []int{2}, Data: []float64{1, 2}}
	tests := []struct {
		name    string
		tensors []Tensor
		dtype   DType
		wantErr string
	}{
		{"bf16 output", []Tensor{ok}, BF16, "dtype"},
		{"empty name", []Tensor{{Name: "", Shape: []int{1}, Data: []float64{1}}}, F32, "invalid tensor name"},
		{"reserved name", []Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float64{1}}}, F32, "invalid tensor name"},
		{"duplicate", []Tensor{ok, ok}, F32, "duplicate"},
		{"shape mismatch", []Tensor{{Name: "a", Shape: []int{3}, Data: []float64{1, 2}}}, F32, "2 values for shape [3]"},
		{"f16 overflow", []Tensor{{Name: "a", Shape: []int{1}, Data: []float64{70000}}}, F16, "overflows F16"},
		{"f32 overflow", []Tensor{{Name: "a", Shape: []int{1}, Data: []float64{1e300}}}, F32, "overflows F32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteSafetensors(&buf, tt.tensors, tt.dtype, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", buf.Len())
			}
		})
	}
	var buf bytes.Buffer
	inf := Tensor{Name: "a", Shape: []int{3}, Data: []float64{math.Inf(1), math.Inf(-1), math.NaN()}}
	if err := WriteSafetensors(&buf, []Tensor{inf}, F16, nil); err != nil {
		t.Errorf("infinities and NaN should be storable: %v", err)
	}
}

func TestFloat16(t *testing.T) {
	// Every half value survives half -> float64 -> half (NaNs stay NaN).
	for h := 0; h < 1<<16; h++ {
		v := f16ToFloat64(uint16(h))
		back := float64ToF16(v)
		if math.IsNaN(v) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, v, back)
		}
	}
	tests := []struct {
		in   float64
		want uint16
	}{
		{0, 0x0000},
		{math.Copysign(0, -1), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},                       // largest half
		{65519.99, 0x7bff},                    // rounds down
		{65520, 0x7c00},                       // ties to even: infinity
		{1e-8, 0x0000},                        // underflow
		{0x1p-24, 0x0001},                     // smallest subnormal
		{0x1p-25, 0x0000},                     // tie to even: zero
		{0x1.8p-25, 0x0001},                   // above the tie
		{0x1p-14, 0x0400},                     // smallest normal
		{0x1.ffcp-15, 0x0400},                 // subnormal rounding up to the smallest normal
		{1 + 0x1p-11, 0x3c00},                 // tie to even (down)
		{1 + 3*0x1p-11, 0x3c02},               // tie to even (up)
		{1.0 / 3, 0x3555},                     // round to nearest
		{math.SmallestNonzeroFloat64, 0x0000}, // float64 subnormal
	}
	for _, tt := range tests {
		if got := float64ToF16(tt.in); got != tt.want {
			t.Errorf("float64ToF16(%v) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
	// Direct rounding agrees with rounding through float32 away from double
	// rounding cases.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		v := math.Ldexp(rng.Float64()+0.5, rng.IntN(40)-28)
		v32 := float64(float32(v))
		if v32 != v {
			continue
		}
		lo, hi := float64ToF16(math.Nextafter(v, 0)), float64ToF16(math.Nextafter(v, 2*v))
		if got := float64ToF16(v); got != lo && got != hi {
			t.Fatalf("float64ToF16(%v) = %#04x, neighbours give %#04x and %#04x", v, got, lo, hi)
		}
	}
}

// FuzzReadSafetensors feeds arbitrary bytes to the decoder: it must return
// an error or a file whose tensors all read without panicking, and a file
// it accepts must tile its data buffer exactly.
func FuzzReadSafetensors(f *testing.F) {
	for _, dtype := range []DType{F16, F32, F64} {
		f.Add(encodeSafetensors(f, sampleTensors(), dtype, map[string]string{"format": "pt"}))
	}
	f.Add(rawSafetensors(`{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, -1, []byte{0, 0x3f, 0, 0x40}))
	f.Add(rawSafetensors(`{}`, -1, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		var total int64
		for _, name := range st.Names() {
			info, ok := st.Info(name)
			if !ok {
				t.Fatalf("listed tensor %q has no info", name)
			}
			total += info.End - info.Begin
			tensor, err := st.Tensor(name)
			if err != nil {
				continue // non-float dtypes
			}
			if int64(len(tensor.Data)) != info.NumElements() {
				t.Fatalf("%s: %d values for %d elements", name, len(tensor.Data), info.NumElements())
			}
		}
		if total != int64(len(data))-st.dataOff {
			t.Fatalf("tensors cover %d bytes of %d", total, int64(len(data))-st.dataOff)
		}
		// A valid file survives a JSON round trip of its metadata.
		if _, err := json.Marshal(st.Metadata()); err != nil {
			t.Fatal(err)
		}
	})
}

package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"unicode/utf8"
)

// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}} and a data buffer. Offsets are relative
// to the start of the buffer; the tensors are stored contiguously, without
// gaps or overlaps, and cover the whole buffer.

// MaxSafetensorsHeader bounds the JSON header of a safetensors file, as the
// reference implementation does (100 MB).
const MaxSafetensorsHeader = 100_000_000

// maxTensorRank bounds the number of dimensions of a tensor.
const maxTensorRank = 16

// metadataKey is the reserved header key holding the free-form metadata.
const metadataKey = "__metadata__"

// DType is the element type of a safetensors tensor, named as in the file.
type DType string

// The element types of the safetensors format. Tensor converts F16, BF16,
// F32 and F64 to float64; the others can be listed but not read.
const (
	F16    DType = "F16"
	BF16   DType = "BF16"
	F32    DType = "F32"
	F64    DType = "F64"
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	I16    DType = "I16"
	U16    DType = "U16"
	I32    DType = "I32"
	U32    DType = "U32"
	I64    DType = "I64"
	U64    DType = "U64"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
)

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3:
		return 1
	case F16, BF16, I16, U16:
		return 2
	case F32, I32, U32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are the tensor's byte offsets in the data buffer.
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n, _ := numElements(t.Shape)
	return n
}

// Tensor is a tensor whose elements have been converted to float64, in
// row-major order.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float64
}

// SafetensorsFile is a safetensors file whose header has been read and
// validated. Tensor reads and converts one tensor at a time.
type SafetensorsFile struct {
	r        io.ReaderAt
	closer   io.Closer
	dataOff  int64
	infos    map[string]TensorInfo
	names    []string
	metadata map[string]string
}

// OpenSafetensors opens the safetensors file at path and validates its
// header. Close the result when done.
func OpenSafetensors(path string) (*SafetensorsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot OpenSafetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot OpenSafetensors: %w", err)
	}
	s, err := ParseSafetensors(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot OpenSafetensors %s: %w", path, err)
	}
	s.closer = f
	return s, nil
}

// Close releases the file behind s, if OpenSafetensors opened one.
func (s *SafetensorsFile) Close() error {
	if s.closer == nil {
		return nil
	}
	err := s.closer.Close()
	s.closer = nil
	return err
}

// rawTensorInfo is one header entry as written in the JSON header.
type rawTensorInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// ParseSafetensors reads and validates the header of the size-byte
// safetensors file behind r. It checks that the header length is within
// MaxSafetensorsHeader and the file, that the header is UTF-8 JSON with no
// duplicate names, that every dtype is known, that every tensor's byte size is
// the product of its shape times its element size, and that the tensors tile
// the data buffer exactly.
func ParseSafetensors(r io.ReaderAt, size int64) (*SafetensorsFile, error) {
	if size < 8 {
		return nil, fmt.Errorf("cannot ParseSafetensors: file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readAtFull(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("cannot ParseSafetensors: reading header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > MaxSafetensorsHeader {
		return nil, fmt.Errorf("cannot ParseSafetensors: header length %d exceeds the limit %d", hlen, MaxSafetensorsHeader)
	}
	if hlen < 2 || int64(hlen) > size-8 {
		return nil, fmt.Errorf("cannot ParseSafetensors: header length %d does not fit a %d-byte file", hlen, size)
	}
	header := make([]byte, hlen)
	if err := readAtFull(r, header, 8); err != nil {
		return nil, fmt.Errorf("cannot ParseSafetensors: reading header: %w", err)
	}
	s := &SafetensorsFile{r: r, dataOff: 8 + int64(hlen), infos: map[string]TensorInfo{}}
	if err := s.parseHeader(header, size-s.dataOff); err != nil {
		return nil, fmt.Errorf("cannot ParseSafetensors: %w", err)
	}
	return s, nil
}

// readAtFull fills p from r at off; unlike a bare ReadAt it accepts io.EOF
// when p was filled.
func readAtFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parseHeader decodes and validates the JSON header against a data buffer
// of dataLen bytes.
func (s *SafetensorsFile) parseHeader(header []byte, dataLen int64) error {
	if !utf8.Valid(header) {
		return errors.New("header is not valid UTF-8")
	}
	if header[0] != '{' {
		return errors.New("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("header: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return fmt.Errorf("header: key %v is not a string", tok)
		}
		if _, dup := s.infos[name]; dup || (name == metadataKey && s.metadata != nil) {
			return fmt.Errorf("header: duplicate entry %q", name)
		}
		if name == metadataKey {
			md := map[string]string{}
			if err := dec.Decode(&md); err != nil {
				return fmt.Errorf("header: %s: %w", metadataKey, err)
			}
			s.metadata = md
			continue
		}
		var raw rawTensorInfo
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("header: tensor %q: %w", name, err)
		}
		info, err := checkTensorInfo(name, raw)
		if err != nil {
			return err
		}
		s.infos[name] = info
		s.names = append(s.names, name)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fmt.Errorf("header: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("header: trailing data after the JSON object")
	}
	if s.metadata == nil {
		s.metadata = map[string]string{}
	}
	sort.Strings(s.names)
	return s.checkLayout(dataLen)
}

// checkTensorInfo validates one header entry on its own.
func checkTensorInfo(name string, raw rawTensorInfo) (TensorInfo, error) {
	if raw.DType == nil || raw.Shape == nil || raw.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: entry needs dtype, shape and data_offsets", name)
	}
	dt := DType(*raw.DType)
	if dt.Size() == 0 {
		return TensorInfo{}, fmt.Errorf("tensor %q: unknown dtype %q", name, *raw.DType)
	}
	if len(*raw.Shape) > maxTensorRank {
		return TensorInfo{}, fmt.Errorf("tensor %q: rank %d exceeds %d", name, len(*raw.Shape), maxTensorRank)
	}
	shape := make([]int, len(*raw.Shape))
	for i, d := range *raw.Shape {
		if d < 0 || d > math.MaxInt32 {
			return TensorInfo{}, fmt.Errorf("tensor %q: dimension %d is %d", name, i, d)
		}
		shape[i] = int(d)
	}
	if len(*raw.DataOffsets) != 2 {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets has %d entries, want 2", name, len(*raw.DataOffsets))
	}
	begin, end := (*raw.DataOffsets)[0], (*raw.DataOffsets)[1]
	if begin < 0 || end < begin {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] are not an interval", name, begin, end)
	}
	n, ok := numElements(shape)
	if !ok || n > math.MaxInt64/int64(dt.Size()) {
		return TensorInfo{}, fmt.Errorf("tensor %q: shape %v is too large", name, shape)
	}
	if want := n * int64(dt.Size()); end-begin != want {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] span %d bytes, but shape %v of %s needs %d",
			name, begin, end, end-begin, shape, dt, want)
	}
	return TensorInfo{Name: name, DType: dt, Shape: shape, Begin: begin, End: end}, nil
}

// numElements returns the product of shape, and false if it overflows an
// int64.
func numElements(shape []int) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	for _, d := range shape {
		if d < 0 || n > math.MaxInt64/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

// checkLayout checks that the tensors tile the dataLen-byte buffer: sorted
// by offset, each begins where the previous ends, and the last ends at the
// end of the buffer.
func (s *SafetensorsFile) checkLayout(dataLen int64) error {
	byOffset := make([]TensorInfo, 0, len(s.infos))
	for _, info := range s.infos {
		byOffset = append(byOffset, info)
	}
	sort.Slice(byOffset, func(i, j int) bool {
		if byOffset[i].Begin != byOffset[j].Begin {
			return byOffset[i].Begin < byOffset[j].Begin
		}
		if byOffset[i].End != byOffset[j].End {
			return byOffset[i].End < byOffset[j].End
		}
		return byOffset[i].Name < byOffset[j].Name
	})
	var pos int64
	for _, info := range byOffset {
		if info.Begin != pos {
			if info.Begin < pos {
				return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap the previous tensor, which ends at %d",
					info.Name, info.Begin, info.End, pos)
			}
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap after offset %d", info.Name, info.Begin, info.End, pos)
		}
		pos = info.End
	}
	if pos != dataLen {
		return fmt.Errorf("tensors cover %d bytes of a %d-byte data buffer", pos, dataLen)
	}
	return nil
}

// Names returns the tensor names in sorted order.
func (s *SafetensorsFile) Names() []string { return append([]string(nil), s.names...) }

// Info returns the description of the tensor called name.
func (s *SafetensorsFile) Info(name string) (TensorInfo, bool) {
	info, ok := s.infos[name]
	if !ok {
		return TensorInfo{}, false
	}
	info.Shape = append([]int(nil), info.Shape...)
	return info, true
}

// Metadata returns a copy of the header's __metadata__ map (empty if absent).
func (s *SafetensorsFile) Metadata() map[string]string {
	md := make(map[string]string, len(s.metadata))
	for k, v := range s.metadata {
		md[k] = v
	}
	return md
}

// Tensor reads the tensor called name and converts it to float64. Only F16,
// BF16, F32 and F64 tensors can be read.
func (s *SafetensorsFile) Tensor(name string) (Tensor, error) {
	info, ok := s.infos[name]
	if !ok {
		return Tensor{}, fmt.Errorf("cannot read tensor %q: not in the file", name)
	}
	switch info.DType {
	case F16, BF16, F32, F64:
	default:
		return Tensor{}, fmt.Errorf("cannot read tensor %q: dtype %s is not a floating-point type", name, info.DType)
	}
	n := info.NumElements()
	if n > math.MaxInt/8 {
		return Tensor{}, fmt.Errorf("cannot read tensor %q: %d elements do not fit in memory", name, n)
	}
	raw := make([]byte, info.End-info.Begin)
	if err := readAtFull(s.r, raw, s.dataOff+info.Begin); err != nil {
		return Tensor{}, fmt.Errorf("cannot read tensor %q: %w", name, err)
	}
	data := make([]float64, n)
	le := binary.LittleEndian
	switch info.DType {
	case F16:
		for i := range data {
			data[i] = f16ToFloat64(le.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range data {
			data[i] = float64(math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16))
		}
	case F32:
		for i := range data {
			data[i] = float64(math.Float32frombits(le.Uint32(raw[4*i:])))
		}
	case F64:
		for i := range data {
			data[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	}
	return Tensor{Name: name, Shape: append([]int(nil), info.Shape...), Data: data}, nil
}

// WriteSafetensors writes tensors to w as a safetensors file whose elements
// are stored as dtype (F16, F32 or F64), in the order given, with an optional
// __metadata__ map. It fails, writing nothing, if a name is empty, reserved
// or repeated, if a tensor's data does not match its shape, or if a finite
// value overflows dtype.
func WriteSafetensors(w io.Writer, tensors []Tensor, dtype DType, metadata map[string]string) error {
	switch dtype {
	case F16, F32, F64:
	default:
		return fmt.Errorf("cannot WriteSafetensors: dtype %q is not one of F16, F32, F64", dtype)
	}
	type entry struct {
		DType       DType   `json:"dtype"`
		Shape       []int   `json:"shape"`
		DataOffsets []int64 `json:"data_offsets"`
	}
	header := make(map[string]any, len(tensors)+1)
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	var off int64
	for _, t := range tensors {
		if t.Name == "" || t.Name == metadataKey {
			return fmt.Errorf("cannot WriteSafetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("cannot WriteSafetensors: duplicate tensor name %q", t.Name)
		}
		n, ok := numElements(t.Shape)
		if !ok || n != int64(len(t.Data)) || len(t.Shape) > maxTensorRank {
			return fmt.Errorf("cannot WriteSafetensors: tensor %q has %d values for shape %v", t.Name, len(t.Data), t.Shape)
		}
		shape := append([]int{}, t.Shape...)
		size := n * int64(dtype.Size())
		header[t.Name] = entry{DType: dtype, Shape: shape, DataOffsets: []int64{off, off + size}}
		off += size
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("cannot WriteSafetensors: %w", err)
	}
	// Pad the header with spaces to a multiple of 8 bytes, as the reference
	// writer does, so the data buffer is aligned.
	if r := len(hdr) % 8; r != 0 {
		hdr = append(hdr, bytes.Repeat([]byte(" "), 8-r)...)
	}
	if len(hdr) > MaxSafetensorsHeader {
		return fmt.Errorf("cannot WriteSafetensors: header of %d bytes exceeds the limit %d", len(hdr), MaxSafetensorsHeader)
	}
	// Encode all data first, so a conversion error writes nothing.
	data := make([]byte, 0, off)
	le := binary.LittleEndian
	for _, t := range tensors {
		for i, v := range t.Data {
			switch dtype {
			case F16:
				h := float64ToF16(v)
				if h&0x7fff == 0x7c00 && !math.IsInf(v, 0) {
					return fmt.Errorf("cannot WriteSafetensors: tensor %q element %d = %v overflows F16", t.Name, i, v)
				}
				data = le.AppendUint16(data, h)
			case F32:
				f := float32(v)
				if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
					return fmt.Errorf("cannot WriteSafetensors: tensor %q element %d = %v overflows F32", t.Name, i, v)
				}
				data = le.AppendUint32(data, math.Float32bits(f))
			case F64:
				data = le.AppendUint64(data, math.Float64bits(v))
			}
		}
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	for _, b := range [][]byte{lenBuf[:], hdr, data} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("cannot WriteSafetensors: %w", err)
		}
	}
	return nil
}

// WriteSafetensorsFile writes tensors to a new safetensors file at path, as
// WriteSafetensors does.
func WriteSafetensorsFile(path string, tensors []Tensor, dtype DType, metadata map[string]string) error {
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, tensors, dtype, metadata); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cannot WriteSafetensorsFile: %w", err)
	}
	return nil
}

// f16ToFloat64 converts an IEEE 754 half-precision value to float64.
func f16ToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * 0x1p-24
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * (1 + mant/1024) * math.Ldexp(1, exp-15)
}

// float64ToF16 converts f to IEEE 754 half precision, rounding to nearest
// with ties to even; values beyond the range become infinities.
func float64ToF16(f float64) uint16 {
	b := math.Float64bits(f)
	sign := uint16(b>>48) & 0x8000
	exp := int(b>>52) & 0x7ff
	mant := b & (1<<52 - 1)
	if exp == 0x7ff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	if exp == 0 { // zero or a float64 subnormal, far below half's range
		return sign
	}
	e := exp - 1023
	if e > 15 {
		return sign | 0x7c00
	}
	if e >= -14 { // a half normal, unless rounding carries it to infinity
		m := mant >> 42
		rem := mant & (1<<42 - 1)
		if rem > 1<<41 || (rem == 1<<41 && m&1 == 1) {
			m++
		}
		h := uint64(e+15)<<10 + m // a carry out of m increments the exponent
		if h >= 0x7c00 {
			return sign | 0x7c00
		}
		return sign | uint16(h)
	}
	// A half subnormal: f = m * 2^-24 with m < 1024.
	shift := uint(52 - 24 - e)
	if shift > 63 {
		return sign
	}
	full := uint64(1)<<52 | mant
	m := full >> shift
	rem := full & (1<<shift - 1)
	half := uint64(1) << (shift - 1)
	if rem > half || (rem == half && m&1 == 1) {
		m++
	}
	return sign | uint16(m)
}

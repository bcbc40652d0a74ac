package prunestep

// The ring-to-integer conversion's constants, for the external tests
// (TestReadmeBounds).
const (
	ConvBits = convBits
	StatBits = statBits
)

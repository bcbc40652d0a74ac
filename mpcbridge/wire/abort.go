package wire

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReasonLen is the longest abort reason sent or accepted, in bytes.
// Longer reasons are cut when sent.
const MaxReasonLen = 1024

// maxAbortLen is the largest Abort payload: the code and the reason.
const maxAbortLen = 2 + MaxReasonLen

// encodeAbort returns the payload of an Abort message: the code, big-endian,
// then the reason as UTF-8, made printable and cut to MaxReasonLen bytes.
func encodeAbort(code AbortCode, reason string) []byte {
	reason = cleanReason(reason)
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return append(p, reason...)
}

// decodeAbort parses an Abort payload. Invalid UTF-8 and unprintable
// characters in the reason are replaced, so the reason is safe to print.
func decodeAbort(p []byte) (*AbortError, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("%w: abort of %d bytes, want at least 2", ErrMalformed, len(p))
	}
	if len(p) > maxAbortLen {
		return nil, fmt.Errorf("%w: abort of %d bytes, limit %d", ErrFrameTooLarge, len(p), maxAbortLen)
	}
	return &AbortError{
		Code:   AbortCode(binary.BigEndian.Uint16(p)),
		Reason: cleanReason(string(p[2:])),
	}, nil
}

// cleanReason makes s printable (unprintable runes and invalid UTF-8 become
// U+FFFD) and cuts it at a rune boundary to at most MaxReasonLen bytes.
func cleanReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(s) <= MaxReasonLen {
		return s
	}
	cut := MaxReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

package dataset

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
)

// Limits for e-mail decoding.
const (
	maxMIMEDepth = 8       // nested multipart levels followed
	maxEmailText = 1 << 14 // bytes of normalized text kept per e-mail
)

// EmailText returns the Subject of a raw RFC 822 message followed by its
// decoded body: MIME multiparts are walked, transfer encodings undone,
// charsets converted to UTF-8 and HTML reduced to its text. Every header but
// Subject is dropped. Whitespace is collapsed and the result is cut to at
// most 16 KiB (a model reads a few hundred tokens of it). A message whose
// headers cannot be parsed is treated as a bare body.
func EmailText(raw string) string {
	// mbox exports start with an envelope line "From addr date" (no colon).
	if strings.HasPrefix(raw, "From ") {
		if i := strings.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	var subject, body string
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		body = raw
		if i := strings.Index(raw, "\n\n"); i >= 0 {
			body = raw[i+2:]
		}
		body = toUTF8([]byte(body), "")
	} else {
		subject = decodeHeader(msg.Header.Get("Subject"))
		b, _ := io.ReadAll(io.LimitReader(msg.Body, 4<<20))
		body = decodePart(textproto.MIMEHeader(msg.Header), b, 0)
	}
	text := collapseSpace(strings.ToValidUTF8(subject+"\n"+body, " "))
	return truncateUTF8(text, maxEmailText)
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func decodeHeader(s string) string {
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return toUTF8([]byte(s), "")
	}
	return d
}

func charsetReader(cs string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(strings.ToLower(cs))
	if err != nil || enc == nil {
		return nil, fmt.Errorf("unknown charset %q", cs)
	}
	return enc.NewDecoder().Reader(r), nil
}

// toUTF8 converts b from charset cs (empty: unknown) to UTF-8. Unknown or
// invalid text is read as Windows-1252, the commonest legacy mail encoding.
func toUTF8(b []byte, cs string) string {
	if cs != "" {
		if enc, err := htmlindex.Get(strings.ToLower(strings.Trim(cs, `"' `))); err == nil && enc != nil {
			if s, err := enc.NewDecoder().Bytes(b); err == nil {
				return string(s)
			}
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	s, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), " ")
	}
	return string(s)
}

// decodePart returns the text of one MIME entity with header h and raw body b.
func decodePart(h textproto.MIMEHeader, b []byte, depth int) string {
	ctype := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || ctype == "" {
		mt, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxMIMEDepth || params["boundary"] == "" {
			return ""
		}
		return decodeMultipart(b, params["boundary"], depth)
	}
	if mt == "message/rfc822" && depth < maxMIMEDepth {
		msg, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			return ""
		}
		inner, _ := io.ReadAll(io.LimitReader(msg.Body, 4<<20))
		return decodeHeader(msg.Header.Get("Subject")) + "\n" +
			decodePart(textproto.MIMEHeader(msg.Header), inner, depth+1)
	}
	if mt != "text/plain" && mt != "text/html" {
		return ""
	}
	b = undoTransferEncoding(b, h.Get("Content-Transfer-Encoding"))
	text := toUTF8(b, params["charset"])
	if mt == "text/html" || looksLikeHTML(text) {
		return HTMLText(text)
	}
	return text
}

func decodeMultipart(b []byte, boundary string, depth int) string {
	mr := multipart.NewReader(bytes.NewReader(b), boundary)
	var parts []string
	var plain, htmlAlt string
	for i := 0; i < 64; i++ {
		p, err := mr.NextRawPart()
		if err != nil {
			break
		}
		pb, err := io.ReadAll(io.LimitReader(p, 4<<20))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		t := decodePart(p.Header, pb, depth+1)
		switch {
		case mt == "text/plain" && plain == "":
			plain = t
		case mt == "text/html" && htmlAlt == "":
			htmlAlt = t
		default:
			parts = append(parts, t)
		}
	}
	// Prefer the plain-text alternative; keep HTML only when it is all there is.
	first := plain
	if first == "" {
		first = htmlAlt
	}
	return strings.Join(append([]string{first}, parts...), "\n")
}

func undoTransferEncoding(b []byte, cte string) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		if err == nil || len(d) > 0 {
			return d
		}
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		d := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(d, clean)
		if err == nil || n > 0 {
			return d[:n]
		}
	}
	return b
}

func looksLikeHTML(s string) bool {
	l := strings.ToLower(s[:min(len(s), 2048)])
	return strings.Contains(l, "<html") || strings.Contains(l, "<body") ||
		strings.Contains(l, "<table") || strings.Contains(l, "<p>") || strings.Contains(l, "<br")
}

// blockTags end a line of text when they open or close.
var blockTags = map[string]bool{
	"p": true, "br": true, "div": true, "tr": true, "td": true, "th": true, "li": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"table": true, "ul": true, "ol": true, "blockquote": true, "pre": true, "hr": true, "title": true,
}

// HTMLText reduces an HTML document to its visible text: tags, comments,
// scripts and styles are removed, entities decoded, block elements separated
// by line breaks.
func HTMLText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var sb strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return sb.String()
		case html.TextToken:
			if skip == 0 {
				sb.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			tt := z.Token().Type
			if tag == "script" || tag == "style" {
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			}
			if blockTags[tag] {
				sb.WriteByte('\n')
			}
		}
	}
}

// collapseSpace replaces every run of white space by one space or, where the
// run holds a line break, by one line break, and trims the ends.
func collapseSpace(s string) string {
	var sb strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), len(s)+1)
	first := true
	for sc.Scan() {
		line := strings.Join(strings.Fields(sc.Text()), " ")
		if line == "" {
			continue
		}
		if !first {
			sb.WriteByte('\n')
		}
		sb.WriteString(line)
		first = false
	}
	return sb.String()
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

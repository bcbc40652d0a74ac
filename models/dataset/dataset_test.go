package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEmailText(t *testing.T) {
	tests := []struct {
		name, raw, want string
		absent          []string
	}{
		{
			name: "plain with mbox line and headers dropped",
			raw:  "From a@b.c  Thu Aug 22 13:17:22 2002\nReceived: from x\nFrom: a@b.c\nSubject: Hello there\n\nBody line one.\n\n  Body   line two.\n",
			want: "Hello there\nBody line one.\nBody line two.", absent: []string{"Received", "a@b.c"},
		},
		{
			name: "quoted-printable latin1",
			raw:  "Subject: =?iso-8859-1?q?Caf=E9?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nna=EFve r=E9sum=\n=E9\n",
			want: "Café\nnaïve résumé",
		},
		{
			name: "base64 html",
			raw:  "Subject: Offer\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\nPGh0bWw+PGJvZHk+PHA+QnV5Jm5ic3A7bm93PC9wPjxzY3JpcHQ+eCgpPC9zY3JpcHQ+PC9ib2R5PjwvaHRtbD4=\n",
			want: "Offer\nBuy now", absent: []string{"<p>", "x()"},
		},
		{
			name: "multipart alternative prefers plain",
			raw:  "Subject: Alt\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"XX\"\n\npreamble\n--XX\nContent-Type: text/plain\n\nplain words\n--XX\nContent-Type: text/html\n\n<p>html words</p>\n--XX--\n",
			want: "Alt\nplain words", absent: []string{"html words", "preamble"},
		},
		{
			name: "multipart with only html and an attachment",
			raw:  "Subject: Att\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/html\n\n<b>bold</b> text\n--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n--B--\n",
			want: "Att\nbold text",
		},
		{
			name: "no headers at all",
			raw:  "just some text without headers",
			want: "just some text without headers",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EmailText(tc.raw)
			if got != tc.want {
				t.Fatalf("EmailText = %q, want %q", got, tc.want)
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("EmailText kept %q", a)
				}
			}
		})
	}
}

func TestEmailTextTruncates(t *testing.T) {
	got := EmailText("Subject: x\n\n" + strings.Repeat("é ", maxEmailText))
	if len(got) > maxEmailText || !strings.HasPrefix(got, "x\n") {
		t.Fatalf("len %d, prefix %q", len(got), got[:4])
	}
	if !strings.HasSuffix(got, "é") && !strings.HasSuffix(got, " ") && !strings.HasSuffix(got, "é ") {
		t.Fatalf("cut inside a rune: %q", got[len(got)-4:])
	}
}

// tarball builds a gzipped tar with the given members.
func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fakeFetcher(tgz []byte, calls *int) Fetcher {
	return func(_ context.Context, spec, dest string) (string, error) {
		*calls++
		p := filepath.Join(dest, "pkg.tgz")
		return p, os.WriteFile(p, tgz, 0o644)
	}
}

func TestParseSentiment(t *testing.T) {
	files := map[string]string{}
	for i, f := range sentimentFiles {
		files["package/test/fixtures/"+f+".json"] = `[{"text":"good ` + f + `","class":1},{"text":"bad  ` + f + `","class":0},{"text":"","class":null},null]`
		_ = i
	}
	exs, err := parseSentiment(tarball(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 6 || exs[0] != (Example{"good amazon", 1}) || exs[1] != (Example{"bad amazon", 0}) {
		t.Fatalf("got %v", exs)
	}
	delete(files, "package/test/fixtures/imdb.json")
	if _, err := parseSentiment(tarball(t, files)); err == nil || !strings.Contains(err.Error(), "imdb") {
		t.Fatalf("missing fixture: err = %v", err)
	}
	files["package/test/fixtures/imdb.json"] = `[{"text":"x","class":7}]`
	if _, err := parseSentiment(tarball(t, files)); err == nil || !strings.Contains(err.Error(), "class 7") {
		t.Fatalf("bad class: err = %v", err)
	}
}

func TestParseSpam(t *testing.T) {
	files := map[string]string{
		"package/data/spam-1/00001.a.json":     `{"id":"00001","group":"spam-1","text":"Subject: Win\n\nmoney"}`,
		"package/data/easy-ham-1/00001.b.json": `{"id":"00001","group":"easy-ham-1","text":"Subject: Meeting\n\nat noon"}`,
		"package/data/file_list.json":          `[]`,
	}
	exs, err := parseSpam(tarball(t, files))
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{{"Meeting\nat noon", 0}, {"Win\nmoney", 1}}
	if len(exs) != 2 || exs[0] != want[0] || exs[1] != want[1] {
		t.Fatalf("got %v, want %v", exs, want)
	}
	files["package/data/spam-1/00002.c.json"] = `{"id":"00002","group":"easy-ham-1","text":""}`
	if _, err := parseSpam(tarball(t, files)); err == nil || !strings.Contains(err.Error(), "folder") {
		t.Fatalf("group mismatch: err = %v", err)
	}
}

func TestSplitDeterministicAndDisjoint(t *testing.T) {
	var exs []Example
	for i := range 105 {
		exs = append(exs, Example{Text: strings.Repeat("w", i+1), Label: i % 2})
	}
	a, b := split(exs, 7), split(exs, 7)
	if len(a[0]) != 85 || len(a[1]) != 10 || len(a[2]) != 10 {
		t.Fatalf("sizes %d/%d/%d", len(a[0]), len(a[1]), len(a[2]))
	}
	seen := map[string]bool{}
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatal("split is not deterministic")
			}
			if seen[a[i][j].Text] {
				t.Fatal("example in two splits")
			}
			seen[a[i][j].Text] = true
		}
	}
	if c := split(exs, 8); c[2][0] == a[2][0] && c[2][1] == a[2][1] {
		t.Fatal("seed does not change the split")
	}
}

func TestPrepareAndLoad(t *testing.T) {
	files := map[string]string{}
	for _, f := range sentimentFiles {
		var recs []string
		for i := range 20 {
			recs = append(recs, `{"text":"`+f+` sentence `+strings.Repeat("x", i)+`","class":`+string(rune('0'+i%2))+`}`)
		}
		recs = append(recs, `{"text":"dup","class":1}`)
		files["package/test/fixtures/"+f+".json"] = "[" + strings.Join(recs, ",") + "]"
	}
	tgz := tarball(t, files)
	sum := sha256.Sum256(tgz)
	pkg := Package{Spec: "sentiment@0.0.0", SHA256: hex.EncodeToString(sum[:])}

	dir := t.TempDir()
	if _, err := Load(dir, Sentiment, Test); !errors.Is(err, ErrNotPrepared) {
		t.Fatalf("Load before Prepare: err = %v", err)
	}
	calls := 0
	sizes, err := prepare(context.Background(), dir, Sentiment, pkg, fakeFetcher(tgz, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if sizes != (Sizes{Train: 49, Validation: 6, Test: 6, Duplicates: 2}) {
		t.Fatalf("sizes %+v", sizes)
	}
	test, err := Load(dir, Sentiment, Test)
	if err != nil || len(test) != 6 {
		t.Fatalf("Load: %d examples, err %v", len(test), err)
	}
	// A second Prepare reuses the verified cached tarball.
	if _, err := prepare(context.Background(), dir, Sentiment, pkg, fakeFetcher(tgz, &calls)); err != nil || calls != 1 {
		t.Fatalf("second Prepare: calls %d, err %v", calls, err)
	}
	// A tarball with the wrong checksum is refused.
	pkg.SHA256 = strings.Repeat("0", 64)
	if _, err := prepare(context.Background(), t.TempDir(), Sentiment, pkg, fakeFetcher(tgz, &calls)); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("bad checksum: err = %v", err)
	}
	// A corrupt split file is reported with its line.
	if err := os.WriteFile(SplitPath(dir, Sentiment, Train), []byte("{\"text\":\"a\",\"label\":0}\n{bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, Sentiment, Train); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt split: err = %v", err)
	}
}

func TestMembersRejectsGarbage(t *testing.T) {
	if _, err := members([]byte("not gzip"), func(string) bool { return true }); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestParseNames(t *testing.T) {
	if _, err := ParseTask("nope"); err == nil {
		t.Fatal("ParseTask accepted nope")
	}
	if s, err := ParseSplit("validation"); err != nil || s != Validation {
		t.Fatal("ParseSplit(validation)")
	}
}

// FuzzEmailText feeds arbitrary messages to the e-mail decoder: it must not
// panic, and must return valid UTF-8 within the length bound.
func FuzzEmailText(f *testing.F) {
	f.Add("Subject: hi\n\nbody")
	f.Add("Subject: =?utf-8?b?w6k=?=\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html; charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n\n<p>=E9</p>\n--b--")
	f.Add("From x\nContent-Type: message/rfc822\n\nSubject: inner\n\ntext")
	f.Fuzz(func(t *testing.T, raw string) {
		got := EmailText(raw)
		if len(got) > maxEmailText {
			t.Fatalf("length %d", len(got))
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
	})
}

package ckks

import "testing"

func TestPresetsSecurity(t *testing.T) {
	secure := 0
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			rep, err := p.Security()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s, levels %d", p.Name, rep, len(p.Literal.LogQ)-1)
			if p.Insecure {
				if rep.Secure {
					t.Errorf("insecure preset %s passes the 128-bit check", p.Name)
				}
				if _, err := PresetByName(p.Name, false); err == nil {
					t.Errorf("PresetByName(%q, false) accepted an insecure preset", p.Name)
				}
				return
			}
			secure++
			if err := p.CheckSecurity(); err != nil {
				t.Error(err)
			}
			if p.Literal.LogN < 13 || p.Literal.LogN > 15 {
				t.Errorf("interactive preset with LogN %d outside 13..15", p.Literal.LogN)
			}
			if _, err := PresetByName(p.Name, false); err != nil {
				t.Error(err)
			}
			// The deepest registry recipe must fit between two refreshes.
			if len(p.Literal.LogQ)-1 < 10 {
				t.Errorf("%d levels < 10 (InvSqrt)", len(p.Literal.LogQ)-1)
			}
		})
	}
	if secure == 0 {
		t.Error("no secure preset")
	}
	if _, err := PresetByName("nope", true); err == nil {
		t.Error("unknown preset accepted")
	}
	if _, err := PresetByName(DefaultPreset, false); err != nil {
		t.Error(err)
	}
}

func TestHEStandardBound(t *testing.T) {
	for logN, want := range map[int]int{12: 109, 13: 218, 14: 438, 15: 881, 16: 1772} {
		got, err := HEStandardMaxLogQP(logN)
		if err != nil || got != want {
			t.Errorf("HEStandardMaxLogQP(%d) = %d, %v; want %d", logN, got, err, want)
		}
	}
	if _, err := HEStandardMaxLogQP(20); err == nil {
		t.Error("no error for LogN 20")
	}
}

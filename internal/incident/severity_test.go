package incident

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSeverityRank(t *testing.T) {
	want := map[Severity]int{
		SeveritySecurity: 0, SeverityCritical: 1, SeverityMajor: 2, SeverityMinor: 3,
		SeverityWarning: 4, SeverityIndeterminate: 5, SeverityInformational: 6,
		SeverityNormal: 7, SeverityOK: 7, SeverityCleared: 7,
		SeverityDebug: 8, SeverityTrace: 9, SeverityUnknown: 10,
		"": -1, "Critical": -1, "fatal": -1,
	}
	got := map[Severity]int{}
	for s := range want {
		got[s] = s.Rank()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rank (-want +got):\n%s", diff)
	}
}

func TestSeveritiesOrdered(t *testing.T) {
	all := Severities()
	if len(all) != 13 {
		t.Fatalf("Severities() has %d entries, want 13", len(all))
	}
	for i, s := range all {
		if !s.Valid() {
			t.Errorf("%q not valid", s)
		}
		if i > 0 && s.Rank() < all[i-1].Rank() {
			t.Errorf("%q (rank %d) after %q (rank %d)", s, s.Rank(), all[i-1], all[i-1].Rank())
		}
	}
}

func TestSeverityIsNormal(t *testing.T) {
	var got []Severity
	for _, s := range append(Severities(), "", "NORMAL", "bogus") {
		if s.IsNormal() {
			got = append(got, s)
		}
	}
	want := []Severity{SeverityNormal, SeverityOK, SeverityCleared}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("normal class (-want +got):\n%s", diff)
	}
}

func TestTrendBetween(t *testing.T) {
	tests := []struct {
		previous, current Severity
		want              Trend
	}{
		{SeverityIndeterminate, SeverityCritical, TrendMoreSevere},
		{SeverityCritical, SeverityMajor, TrendLessSevere},
		{SeverityMajor, SeverityMajor, TrendNoChange},
		{SeverityNormal, SeverityOK, TrendNoChange}, // one class
		{SeverityWarning, SeverityCleared, TrendLessSevere},
		{SeverityUnknown, SeverityTrace, TrendMoreSevere},
		{"bogus", SeverityCritical, TrendNoChange},
		{SeverityCritical, "", TrendNoChange},
	}
	for _, tt := range tests {
		t.Run(string(tt.previous)+"->"+string(tt.current), func(t *testing.T) {
			if got := TrendBetween(tt.previous, tt.current); got != tt.want {
				t.Errorf("TrendBetween(%q, %q) = %q, want %q", tt.previous, tt.current, got, tt.want)
			}
		})
	}
}

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		in     string
		want   Severity
		wantOK bool
	}{
		{"critical", SeverityCritical, true},
		{"CRITICAL", SeverityCritical, true},
		{" Major ", SeverityMajor, true},
		{"ok", SeverityOK, true},
		{"Informational", SeverityInformational, true},
		{"", SeverityWarning, false},
		{"page", SeverityWarning, false},
		{"crit", SeverityWarning, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseSeverity(tt.in, SeverityWarning)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseSeverity(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

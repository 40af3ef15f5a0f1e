package incident

import "strings"

// The severities, in Alerta's default order from most to least severe.
const (
	SeveritySecurity      Severity = "security"
	SeverityCritical      Severity = "critical"
	SeverityMajor         Severity = "major"
	SeverityMinor         Severity = "minor"
	SeverityWarning       Severity = "warning"
	SeverityIndeterminate Severity = "indeterminate"
	SeverityInformational Severity = "informational"
	SeverityNormal        Severity = "normal"
	SeverityOK            Severity = "ok"
	SeverityCleared       Severity = "cleared"
	SeverityDebug         Severity = "debug"
	SeverityTrace         Severity = "trace"
	SeverityUnknown       Severity = "unknown"
)

// DefaultPreviousSeverity is the previousSeverity of a new alert, as in Alerta: the trend of
// a new alert is measured against it.
const DefaultPreviousSeverity = SeverityIndeterminate

// DefaultNormalSeverity is the severity an alert takes when an operator closes it.
const DefaultNormalSeverity = SeverityNormal

// AttrOriginalSeverity is the attribute in which a decoder records a severity it did not
// know, before replacing it with its default, so the sender's value is never lost.
const AttrOriginalSeverity = "originalSeverity"

// severityRank holds Alerta's SEVERITY_MAP: lower is more severe; the normal class shares
// one rank.
var severityRank = map[Severity]int{
	SeveritySecurity:      0,
	SeverityCritical:      1,
	SeverityMajor:         2,
	SeverityMinor:         3,
	SeverityWarning:       4,
	SeverityIndeterminate: 5,
	SeverityInformational: 6,
	SeverityNormal:        7,
	SeverityOK:            7,
	SeverityCleared:       7,
	SeverityDebug:         8,
	SeverityTrace:         9,
	SeverityUnknown:       10,
}

const normalRank = 7

// Severities returns every valid severity, most severe first.
func Severities() []Severity {
	return []Severity{
		SeveritySecurity, SeverityCritical, SeverityMajor, SeverityMinor, SeverityWarning,
		SeverityIndeterminate, SeverityInformational, SeverityNormal, SeverityOK,
		SeverityCleared, SeverityDebug, SeverityTrace, SeverityUnknown,
	}
}

// Rank returns the severity's place in Alerta's order: 0 for security, the most severe, up
// to 10 for unknown; normal, ok and cleared share 7. It returns -1 for an invalid severity.
func (s Severity) Rank() int {
	r, ok := severityRank[s]
	if !ok {
		return -1
	}
	return r
}

// Valid reports whether s is one of the severities, spelled in lowercase.
func (s Severity) Valid() bool {
	_, ok := severityRank[s]
	return ok
}

// IsNormal reports whether s is of the normal class (normal, ok, cleared), which closes
// the alert it arrives on.
func (s Severity) IsNormal() bool {
	r, ok := severityRank[s]
	return ok && r == normalRank
}

// TrendBetween says how the severity moved from previous to current; it is noChange when
// either is not a valid severity, as in Alerta.
func TrendBetween(previous, current Severity) Trend {
	p, c := previous.Rank(), current.Rank()
	switch {
	case p < 0 || c < 0 || p == c:
		return TrendNoChange
	case c < p:
		return TrendMoreSevere
	default:
		return TrendLessSevere
	}
}

// ParseSeverity returns the severity s names, ignoring case and surrounding space. For an
// empty or unknown name it returns def and false, so the caller can record what it got.
func ParseSeverity(s string, def Severity) (Severity, bool) {
	sev := Severity(strings.ToLower(strings.TrimSpace(s)))
	if !sev.Valid() {
		return def, false
	}
	return sev, true
}

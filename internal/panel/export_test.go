package panel

// Patterns returns the route patterns of p, for the security tests.
func Patterns(p *Panel) []string { return append([]string(nil), p.mux.patterns...) }

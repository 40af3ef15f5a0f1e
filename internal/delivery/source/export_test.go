package source

// Waiting returns how many Fetches of repoURL wait on a round of git commands, so a test
// can tell when every concurrent Fetch has joined one.
func (m *Mirrors) Waiting(repoURL string) int {
	r, err := parseRemote(repoURL)
	if err != nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mir := m.mirrors[r.key]; mir != nil {
		return mir.waiting
	}
	return 0
}

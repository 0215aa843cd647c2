package mcp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// sessionPrefix starts every session ID the edge mints.
const sessionPrefix = "mcp-session-"

var errUnknownSession = errors.New("unknown session")

// session is one protocol session (2025-11-25 and earlier) as the edge
// tracks it: the credential it is bound to, the surface the client
// reported, when it was last used and how many notification streams it
// holds open.
type session struct {
	id            string
	credentialKey string
	surface       string
	lastSeen      time.Time
	streams       int
}

// sessions is the registry of live sessions. It is mcp-go's session ID
// manager too, so a session ID is valid only once the edge registered it,
// and the edge registers it before the initialize response that advertises
// it leaves the process. It is safe for concurrent use.
type sessions struct {
	mu      sync.Mutex
	m       map[string]*session
	max     int
	perCred int
	idle    time.Duration
	now     func() time.Time
}

func newSessions(max, perCredential int, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, max: max, perCred: perCredential, idle: idle, now: now}
}

// Generate mints a session ID (mcp-go calls it for initialize). The ID is
// not valid until add registers it.
func (s *sessions) Generate() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return sessionPrefix + hex.EncodeToString(b[:])
}

// Validate accepts a registered session ID. An empty ID is accepted: a
// client that sends none is served statelessly (each request on its own).
func (s *sessions) Validate(id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate forgets a session (DELETE from its client).
func (s *sessions) Terminate(id string) (bool, error) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
	return false, nil
}

// reserve makes room for a new session of credentialKey. When the
// credential already holds its maximum, its least recently used session
// without an open stream is forgotten and its ID returned (the caller
// unregisters it). ok is false when there is no room: the registry is full,
// or every session of the credential has an open stream.
func (s *sessions) reserve(credentialKey string) (evicted string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var mine []*session
	for _, ss := range s.m {
		if ss.credentialKey == credentialKey {
			mine = append(mine, ss)
		}
	}
	if len(mine) >= s.perCred {
		var oldest *session
		for _, ss := range mine {
			if ss.streams <= 0 && (oldest == nil || ss.lastSeen.Before(oldest.lastSeen)) {
				oldest = ss
			}
		}
		if oldest == nil {
			return "", false
		}
		delete(s.m, oldest.id)
		return oldest.id, true
	}
	return "", len(s.m) < s.max
}

// add registers a session bound to a credential. Callers reserve room
// first; concurrent initializes may overshoot the bound by a few.
func (s *sessions) add(id, credentialKey, surface string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = &session{id: id, credentialKey: credentialKey, surface: surface, lastSeen: s.now()}
}

// use returns the session id names when it exists and is bound to
// credentialKey, and marks it used. A session bound to another credential is
// reported as unknown, so a session ID is useless to anyone else.
func (s *sessions) use(id, credentialKey string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[id]
	if !ok || ss.credentialKey != credentialKey {
		return session{}, false
	}
	ss.lastSeen = s.now()
	return *ss, true
}

// surfaceOf returns the surface a session's client reported at initialize.
func (s *sessions) surfaceOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.m[id]; ok {
		return ss.surface
	}
	return ""
}

// streamOpened and streamClosed count a session's open notification
// streams; a session with an open stream never idles out.
func (s *sessions) streamOpened(id string) {
	s.mu.Lock()
	if ss, ok := s.m[id]; ok {
		ss.streams++
	}
	s.mu.Unlock()
}

func (s *sessions) streamClosed(id string) {
	s.mu.Lock()
	if ss, ok := s.m[id]; ok {
		ss.streams--
		ss.lastSeen = s.now()
	}
	s.mu.Unlock()
}

// expire removes sessions idle longer than the idle timeout and returns
// their IDs.
func (s *sessions) expire() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.now().Add(-s.idle)
	var gone []string
	for id, ss := range s.m {
		if ss.streams <= 0 && ss.lastSeen.Before(cutoff) {
			delete(s.m, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// count returns the number of registered sessions.
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

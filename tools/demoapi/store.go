package demoapi

import (
	"sync"
	"time"
)

// DefaultMessageLimit is how many messages a Server keeps when
// Config.MessageLimit is zero.
const DefaultMessageLimit = 10000

// StatusQueued is the status of every accepted message.
const StatusQueued = "queued"

// Message is a message as the API stores and returns it.
type Message struct {
	// ID is "msg_" followed by 24 random hex digits.
	ID string `json:"id"`
	// To is the recipient, as sent.
	To string `json:"to"`
	// Body is the message text, as sent.
	Body string `json:"body"`
	// Status is always StatusQueued.
	Status string `json:"status"`
	// TemplateID is the optional template, empty when none was sent.
	TemplateID string `json:"template_id,omitempty"`
	// CreatedAt is when the server accepted the message (UTC).
	CreatedAt time.Time `json:"created_at"`
}

// store keeps the most recent messages by ID, evicting the oldest beyond
// its limit. It is safe for concurrent use.
type store struct {
	mu    sync.Mutex
	limit int
	byID  map[string]Message
	ring  []string // IDs in insertion order, a ring once full
	start int      // index of the oldest ID once full
}

func newStore(limit int) *store {
	return &store{limit: limit, byID: make(map[string]Message)}
}

// put stores m, evicting the oldest message when the store is full.
func (s *store) put(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[m.ID] = m
	if len(s.ring) < s.limit {
		s.ring = append(s.ring, m.ID)
		return
	}
	delete(s.byID, s.ring[s.start])
	s.ring[s.start] = m.ID
	s.start = (s.start + 1) % s.limit
}

// get returns the message with id, if it is still held.
func (s *store) get(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byID[id]
	return m, ok
}

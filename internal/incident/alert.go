// Package incident is Ferry's incident hub domain: alerts as Alerta models them (identity,
// severity, status), the de-duplication and correlation rules, the actions' state machine,
// and the mapping of Alertmanager's and Alerta's wire formats onto them. It holds no storage
// code: the store applies Receive's decisions in one transaction.
package incident

import (
	"errors"
	"time"
)

// ErrNotFound reports an alert, heartbeat or blackout that does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalid reports input that breaks a rule; the wrapping error says which.
var ErrInvalid = errors.New("invalid input")

// ErrConflict reports an action the alert's status does not allow (ack a closed alert).
var ErrConflict = errors.New("conflict")

// Alert is one alert, with Alerta's JSON field names so Alerta clients read it unchanged.
type Alert struct {
	ID          string   `json:"id"`
	Resource    string   `json:"resource"`
	Event       string   `json:"event"`
	Environment string   `json:"environment"`
	Severity    Severity `json:"severity"`
	// Correlate lists the events that are the same alert at another state, such as
	// [NodeDown, NodeUp]: an alert of one of them replaces the open alert of another.
	Correlate  []string       `json:"correlate"`
	Status     Status         `json:"status"`
	Service    []string       `json:"service"`
	Group      string         `json:"group"`
	Value      string         `json:"value"`
	Text       string         `json:"text"`
	Tags       []string       `json:"tags"`
	Attributes map[string]any `json:"attributes"`
	Origin     string         `json:"origin"`
	EventType  string         `json:"type"`
	CreateTime time.Time      `json:"createTime"`
	// Timeout is how long, in seconds, the alert stays open without a repeat before it
	// expires; zero never expires.
	Timeout          int       `json:"timeout"`
	RawData          string    `json:"rawData"`
	Customer         string    `json:"customer,omitempty"`
	DuplicateCount   int       `json:"duplicateCount"`
	Repeat           bool      `json:"repeat"`
	PreviousSeverity Severity  `json:"previousSeverity"`
	TrendIndication  Trend     `json:"trendIndication"`
	ReceiveTime      time.Time `json:"receiveTime"`
	LastReceiveID    string    `json:"lastReceiveId"`
	LastReceiveTime  time.Time `json:"lastReceiveTime"`
	UpdateTime       time.Time `json:"updateTime"`
	History          []History `json:"history"`

	// ReleaseID is Ferry's: the release of the Application the alert points at, current in
	// its environment when the alert arrived; zero when it points at none.
	ReleaseID int64 `json:"releaseId,omitempty"`
}

// History is one change of an alert, as Alerta records it.
type History struct {
	ID         string    `json:"id"`
	Event      string    `json:"event"`
	Severity   Severity  `json:"severity,omitempty"`
	Status     Status    `json:"status,omitempty"`
	Value      string    `json:"value,omitempty"`
	Text       string    `json:"text"`
	ChangeType string    `json:"type"` // new, severity, status, action, value, expired, timeout
	UpdateTime time.Time `json:"updateTime"`
	User       string    `json:"user,omitempty"`
	Timeout    int       `json:"timeout,omitempty"`
}

// Severity is Alerta's severity, lowercase.
type Severity string

// Status is an alert's status.
type Status string

// The statuses, as Alerta names them.
const (
	StatusOpen     Status = "open"
	StatusAssign   Status = "assign"
	StatusAck      Status = "ack"
	StatusShelved  Status = "shelved"
	StatusBlackout Status = "blackout"
	StatusClosed   Status = "closed"
	StatusExpired  Status = "expired"
	StatusUnknown  Status = "unknown"
)

// Trend says how the severity moved with the last correlated alert.
type Trend string

// The trends, as Alerta names them.
const (
	TrendMoreSevere Trend = "moreSevere"
	TrendLessSevere Trend = "lessSevere"
	TrendNoChange   Trend = "noChange"
)

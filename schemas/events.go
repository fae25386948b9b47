package schemas

import "time"

// Direction is the direction of a voice call relative to the subscriber.
type Direction string

// The call directions of SPEC 2.1.
const (
	DirectionMO  Direction = "MO"  // the subscriber called peer
	DirectionMT  Direction = "MT"  // peer called the subscriber
	DirectionFWD Direction = "FWD" // a call to the subscriber was forwarded to forward_to
)

// Network is a mobile network or number class.
type Network string

// The networks of SPEC 2.1.
const (
	NetworkCMCC    Network = "CMCC"    // China Mobile
	NetworkCUCC    Network = "CUCC"    // China Unicom
	NetworkCTCC    Network = "CTCC"    // China Telecom
	NetworkCBN     Network = "CBN"     // China Broadnet
	NetworkINTL    Network = "INTL"    // a foreign number
	NetworkSPECIAL Network = "SPECIAL" // short service numbers
)

// Networks lists every valid Network in a fixed order.
var Networks = []Network{NetworkCMCC, NetworkCUCC, NetworkCTCC, NetworkCBN, NetworkINTL, NetworkSPECIAL}

// CDR is one voice call-detail record from the cdr.voice topic.
type CDR struct {
	EventID     string    `json:"event_id"`
	MSISDN      string    `json:"msisdn"`
	Peer        string    `json:"peer"`
	Direction   Direction `json:"direction"`
	StartTime   time.Time `json:"start_time"`
	DurationS   int64     `json:"duration_s"`
	PeerNetwork Network   `json:"peer_network,omitempty"`
	ForwardTo   string    `json:"forward_to"`
	CellID      string    `json:"cell_id,omitempty"`
}

// BillingType is the kind of a billing event.
type BillingType string

// The billing event types of SPEC 2.2.
const (
	BillingPayment BillingType = "PAYMENT"
	BillingBill    BillingType = "BILL"
	BillingBalance BillingType = "BALANCE"
	BillingArrears BillingType = "ARREARS"
)

// BillingEvent is one message of the billing.events topic. Money is in fen.
// AmountFen and BalanceFen are pointers because zero is a valid amount and
// absence must be told apart from it.
type BillingEvent struct {
	EventID    string      `json:"event_id"`
	MSISDN     string      `json:"msisdn"`
	Type       BillingType `json:"type"`
	TS         time.Time   `json:"ts"`
	AmountFen  *int64      `json:"amount_fen,omitempty"`
	BalanceFen *int64      `json:"balance_fen,omitempty"`
	Channel    string      `json:"channel,omitempty"`
	BillMonth  string      `json:"bill_month,omitempty"`
}

// CRMType is the kind of a CRM or business event.
type CRMType string

// The CRM event types of SPEC 2.3.
const (
	CRMProfile        CRMType = "PROFILE"
	CRMPortOutQuery   CRMType = "PORT_OUT_QUERY"
	CRMPreCancel      CRMType = "PRE_CANCEL"
	CRMLossReport     CRMType = "LOSS_REPORT"
	CRMSuspendRequest CRMType = "SUSPEND_REQUEST"
	CRMDeactivate     CRMType = "DEACTIVATE"
	CRMReactivate     CRMType = "REACTIVATE"
)

// CRMEvent is one message of the crm.events topic.
type CRMEvent struct {
	EventID string    `json:"event_id"`
	MSISDN  string    `json:"msisdn"`
	Type    CRMType   `json:"type"`
	TS      time.Time `json:"ts"`
	Profile *Profile  `json:"profile,omitempty"`
}

// Tier is a subscriber's value tier (SPEC section 3).
type Tier string

// The value tiers, highest first.
const (
	TierDiamond  Tier = "diamond"
	TierGold     Tier = "gold"
	TierSilver   Tier = "silver"
	TierStandard Tier = "standard"
)

// Tiers lists every valid Tier, highest first.
var Tiers = []Tier{TierDiamond, TierGold, TierSilver, TierStandard}

// HighValue reports whether tasks are opened for subscribers of this tier.
func (t Tier) HighValue() bool {
	return t == TierDiamond || t == TierGold || t == TierSilver
}

// Profile is a subscriber's CRM profile. A PROFILE event replaces the fields
// it carries and keeps the others, so every field is a pointer: nil means
// "not in this message", a pointer to "" means "cleared".
type Profile struct {
	Name           *string `json:"name,omitempty"`
	Birthday       *string `json:"birthday,omitempty"`
	Tier           *Tier   `json:"tier,omitempty"`
	Region         *string `json:"region,omitempty"`
	AccountManager *string `json:"account_manager,omitempty"`
	PhoneManager   *string `json:"phone_manager,omitempty"`
	PromoEnd       *string `json:"promo_end,omitempty"`
	JoinDate       *string `json:"join_date,omitempty"`
	Status         *string `json:"status,omitempty"`
	// Interests and Products are replaced as a whole: a list, even an empty
	// one, replaces the stored list. Products are the sticky products
	// (family plan, mailbox, broadband bundle) that make leaving costly.
	Interests *[]string `json:"interests,omitempty"`
	Group     *Group    `json:"group,omitempty"`
	Products  *[]string `json:"products,omitempty"`
	// NetworkAgeMonths is how long the subscriber has been on the network
	// (网龄), in months.
	NetworkAgeMonths *int64 `json:"network_age_months,omitempty"`
}

// GroupLevel is the grade of an enterprise group customer (集团客户等级).
type GroupLevel string

// The enterprise group levels, highest first.
const (
	GroupA1 GroupLevel = "A1"
	GroupA2 GroupLevel = "A2"
	GroupB1 GroupLevel = "B1"
	GroupB2 GroupLevel = "B2"
	GroupC  GroupLevel = "C"
)

// GroupLevels lists every valid GroupLevel, highest first.
var GroupLevels = []GroupLevel{GroupA1, GroupA2, GroupB1, GroupB2, GroupC}

// Group is the enterprise group (集团) a subscriber belongs to. A PROFILE
// event's group replaces the stored one as a whole; an empty object ({})
// says the subscriber belongs to no group.
type Group struct {
	ID    string     `json:"id,omitempty"`
	Name  string     `json:"name,omitempty"`
	Level GroupLevel `json:"level,omitempty"`
}

// MaxNetworkAgeMonths bounds network_age_months: a century.
const MaxNetworkAgeMonths = 1200

// MaxListItems bounds the interests and products lists.
const MaxListItems = 64

// TaskUpdateStatus is a status that ticketing writes on churn.task-updates.
type TaskUpdateStatus string

// The task update statuses of SPEC 2.4.
const (
	UpdateAccepted    TaskUpdateStatus = "ACCEPTED"
	UpdateContacted   TaskUpdateStatus = "CONTACTED"
	UpdateTransferred TaskUpdateStatus = "TRANSFERRED"
	UpdateRetained    TaskUpdateStatus = "RETAINED"
	UpdateLost        TaskUpdateStatus = "LOST"
	UpdateClosed      TaskUpdateStatus = "CLOSED"
)

// TaskUpdate is one message of the churn.task-updates topic.
type TaskUpdate struct {
	TaskID string           `json:"task_id"`
	MSISDN string           `json:"msisdn"`
	Status TaskUpdateStatus `json:"status"`
	By     string           `json:"by,omitempty"`
	To     string           `json:"to,omitempty"`
	Note   string           `json:"note,omitempty"`
	TS     time.Time        `json:"ts"`
}

// Severity orders warnings by urgency.
type Severity string

// The warning severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Warning is one message of the churn.warnings topic (SPEC 2.5).
type Warning struct {
	WarningID   string         `json:"warning_id"`
	MSISDN      string         `json:"msisdn"`
	Signal      string         `json:"signal"`
	Severity    Severity       `json:"severity"`
	Tier        Tier           `json:"tier"`
	DetectedAt  time.Time      `json:"detected_at"`
	WindowStart time.Time      `json:"window_start"`
	WindowEnd   time.Time      `json:"window_end"`
	Evidence    map[string]any `json:"evidence"`
	Score       int            `json:"score"`
	// Where the subscriber belongs when the warning fired, so that task
	// routing needs no lookup (fields added to SPEC 2.5).
	Region         string `json:"region,omitempty"`
	AccountManager string `json:"account_manager,omitempty"`
	PhoneManager   string `json:"phone_manager,omitempty"`
	// RuleVersion is the content hash of the rule set that fired the
	// warning (config.Rules.Version), so that outcomes and backtests can
	// be told apart per rule set (field added to SPEC 2.5).
	RuleVersion string `json:"rule_version,omitempty"`
}

// TaskStatus is the life-cycle state of a retention task.
type TaskStatus string

// The task statuses of SPEC 2.6.
const (
	TaskOpen      TaskStatus = "OPEN"
	TaskAccepted  TaskStatus = "ACCEPTED"
	TaskContacted TaskStatus = "CONTACTED"
	TaskEscalated TaskStatus = "ESCALATED"
	TaskRetained  TaskStatus = "RETAINED"
	TaskLost      TaskStatus = "LOST"
	TaskClosed    TaskStatus = "CLOSED"
)

// Task is one message of the churn.tasks topic: the state of a task at one
// version (SPEC 2.6).
type Task struct {
	TaskID       string     `json:"task_id"`
	Version      uint32     `json:"version"`
	MSISDN       string     `json:"msisdn"`
	Tier         Tier       `json:"tier"`
	Status       TaskStatus `json:"status"`
	Assignee     string     `json:"assignee"`
	AssigneeRole string     `json:"assignee_role"`
	Priority     int        `json:"priority"`
	CreatedAt    time.Time  `json:"created_at"`
	DueAt        time.Time  `json:"due_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Signals      []string   `json:"signals"`
	WarningIDs   []string   `json:"warning_ids"`
	Score        int        `json:"score"`
	Summary      string     `json:"summary"`
	// Region of the subscriber (a field added to SPEC 2.6).
	Region string `json:"region,omitempty"`
}

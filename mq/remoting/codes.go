package remoting

// Request codes, with RocketMQ's names and numbers.
const (
	SendMessage                      = 10
	PullMessage                      = 11
	QueryMessage                     = 12
	QueryConsumerOffset              = 14
	UpdateConsumerOffset             = 15
	UpdateAndCreateTopic             = 17
	GetAllTopicConfig                = 21
	GetBrokerConfig                  = 26
	GetBrokerRuntimeInfo             = 28
	SearchOffsetByTimestamp          = 29
	GetMaxOffset                     = 30
	GetMinOffset                     = 31
	GetEarliestMsgStoreTime          = 32
	ViewMessageByID                  = 33
	HeartBeat                        = 34
	UnregisterClient                 = 35
	ConsumerSendMsgBack              = 36
	EndTransaction                   = 37
	GetConsumerListByGroup           = 38
	CheckTransactionState            = 39
	NotifyConsumerIDsChanged         = 40
	LockBatchMQ                      = 41
	UnlockBatchMQ                    = 42
	RegisterBroker                   = 103
	UnregisterBroker                 = 104
	GetRouteInfoByTopic              = 105
	GetBrokerClusterInfo             = 106
	UpdateAndCreateSubscriptionGroup = 200
	GetAllSubscriptionGroupConfig    = 201
	GetTopicStatsInfo                = 202
	GetConsumerConnectionList        = 203
	GetAllTopicListFromNameServer    = 206
	DeleteSubscriptionGroup          = 207
	GetConsumeStats                  = 208
	GetTopicsByCluster               = 224
	DeleteTopicInBroker              = 215
	DeleteTopicInNamesrv             = 216
	ResetConsumerClientOffset        = 220
	GetConsumerStatusFromClient      = 221
	InvokeBrokerToResetOffset        = 222
	QueryTopicConsumeByWho           = 300
	GetConsumerRunningInfo           = 307
	ConsumeMessageDirectly           = 309
	SendMessageV2                    = 310
	SendBatchMessage                 = 320
	SendReplyMessage                 = 324
	SendReplyMessageV2               = 325
	PushReplyMessageToClient         = 326
	QueryConsumeQueue                = 321
	GetBrokerMemberGroup             = 901
	BrokerHeartbeat                  = 904
	GetTopicConfig                   = 351
	QueryDataVersion                 = 322
	GetKVConfig                      = 101
	GetKVListByNamespace             = 219
	GetAllProducerInfo               = 328
	GetSystemTopicListFromNs         = 304
	GetUnitTopicList                 = 311
	GetHasUnitSubTopicList           = 312
	GetHasUnitSubUnunitTopicList     = 313
	UpdateBrokerConfig               = 25
	QueryConsumeTimeSpan             = 303
	CleanExpiredConsumeQueue         = 306
)

// Response codes.
const (
	Success                  = 0
	SystemError              = 1
	SystemBusy               = 2
	RequestCodeNotSupported  = 3
	TransactionFailed        = 4
	FlushDiskTimeout         = 10
	SlaveNotAvailable        = 11
	FlushSlaveTimeout        = 12
	MessageIllegal           = 13
	ServiceNotAvailable      = 14
	VersionNotSupported      = 15
	NoPermission             = 16
	TopicNotExist            = 17
	TopicExistAlready        = 18
	PullNotFound             = 19
	PullRetryImmediately     = 20
	PullOffsetMoved          = 21
	QueryNotFound            = 22
	SubscriptionParseFailed  = 23
	SubscriptionNotExist     = 24
	SubscriptionNotLatest    = 25
	SubscriptionGroupMissing = 26
	FilterDataNotExist       = 27
	FilterDataNotLatest      = 28
	InvalidParameter         = 29
	ConsumerNotOnline        = 206
)

// Flag bits of a command.
const (
	FlagResponse = 1 << 0
	FlagOneway   = 1 << 1
)

// Serialization types of the header (high byte of the header-length word).
const (
	SerializeJSON     = 0
	SerializeRocketMQ = 1
)

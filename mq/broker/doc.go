package broker

// Locks.
//
// Most of the broker's mutexes guard one table and are leaves: while one
// is held, no other lock is taken and nothing is called out of package
// broker but file writes (a table persists under its lock):
//
//	topicTable.mu, groupTable.mu   the topic and subscription-group tables
//	offsetTable.mu                 consumer offsets and what changed in them
//	clientTable.mu                 producers, consumers, their connections
//	lockTable.mu                   queue locks of orderly consumers
//	pullHolds.mu                   parked long polls
//	transactions.mu                resolved transactions, fallback conns
//	memberAddrs.mu                 group members' client addresses
//	member.mu                      what the leader replicated last
//	putTimes.mu, sqlCache.mu       statistics, compiled SQL92 filters
//	Broker.kickMu                  connections with queued answers
//
// Three are held across work, and are taken before any of those:
//
//	transactions.checking  one transaction check pass at a time; the pass
//	                       takes table locks and waits for puts
//	Broker.registerMu      one NameServer registration at a time, held
//	                       across the round trips → topicTable.mu
//	member.offsetsMu       from taking offset changes out of the table
//	                       until their entry is proposed → offsetTable.mu,
//	                       member.mu, the replica's put queue
//
// Put callbacks and OnCompletions, which take Broker.kickMu, can run on
// the store's appender with its appendMu held, or on the replica's
// driver, so code holding kickMu must not call into the store or the
// replica.

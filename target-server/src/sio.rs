//! Socket.IO v5 server layer (namespaces, handlers, rooms, recovery). (Being built.)

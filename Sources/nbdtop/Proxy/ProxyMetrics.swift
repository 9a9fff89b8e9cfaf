import NBDProxy

extension MetricsFrame {
    /// A proxy's clients as metrics: no copy figures, each client connection's series
    /// labelled by its number, `side="client"` and who it is (`nbdcopy [1234]`,
    /// `127.0.0.1:50122`). Clients that left keep their series with their totals.
    init(proxy snapshot: ProxySnapshot) {
        self.init(copy: nil, connections: snapshot.clients.map { client in
            Connection(labels: [("lane", String(client.id)), ("side", "client"), ("client", client.client.description)],
                       figures: client.connection)
        })
    }
}

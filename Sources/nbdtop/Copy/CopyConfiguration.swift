import NBDCopy

/// Everything one copy run needs, from `nbdtop copy`'s flags or from `nbdtop demo`.
struct CopyConfiguration: Sendable {
    var options: CopyOptions
    var source: EndpointSpec
    var destination: EndpointSpec
    var statsJSONPath: String?
    var showProgress = false
    var interval: Duration = .seconds(1)
    var verbose = false
    /// nil: the dashboard when stdout is a terminal; true or false when asked for.
    var tui: Bool?
    var theme: String?
    /// A line the dashboard shows under the header (the demo's "press +").
    var hint: String?
    var control: ControlSocketSetting = .standard
    /// With `--background`, the pipe to the parent that waits to hear whether the copy started.
    var readyDescriptor: Int32?
    /// `--metrics`: where to serve Prometheus metrics, if anywhere.
    var metrics: MetricsAddress?
    /// How `showProgress` shows it (the nbdcopy stand-in draws nbdcopy's progress bar).
    var progressDisplay: any ProgressDisplay = ProgressLine()
}

import Foundation
import GatehouseTesting
import Testing

/// Where Debian's headless-capable Chromium is, if installed.
enum Chromium {
    static let path: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// CORS as a real browser enforces it: headless Chromium (Debian's `chromium`) loads a page
/// from one origin that calls the gateway on another with headers that need a preflight. The
/// allowed call's answer (and an exposed header) is readable; the refused one is blocked.
@Suite(.enabled(if: Chromium.path != nil || RedisServer.inCI, "needs Debian's chromium (apt-get install chromium); never skipped in CI"))
struct BrowserCORSTests {
    static func pageRoutes(_ html: String) throws -> String {
        let handler = String(decoding: try JSONSerialization.data(withJSONObject: [
            "handler": ["type": "static", "options": ["status": 200, "headers": ["content-type": "text/html; charset=utf-8"], "body": html]],
        ]), as: UTF8.self)
        return ConfigFixture.routes([("GET", "/index.html", handler)])
    }

    @Test func aPageOnAnotherOriginIsAllowedOrRefusedAsConfigured() async throws {
        let browser = try #require(Chromium.path, "chromium is not installed")
        // The page is served by a second gateway (another port: another origin). Each side
        // needs the other's address, so the page gets its script by a reload once the API runs.
        let site = try ConfigFixture(files: ["config/routes.oas.json": try Self.pageRoutes("starting"), "config/policies.json": #"{ "policies": [] }"#])
        defer { site.remove() }
        let pageServer = try await TestGateway.start(configDirectory: site.configDirectory, pluginDirectories: [site.pluginDirectory], logger: LogCapture().logger())
        let page = pageServer.baseURL
        let forward = #""handler": { "type": "url-forward", "options": { "baseUrl": "$env(UPSTREAM_MAIN)" } }"#
        let fixture = try ConfigFixture(files: [
            "config/routes.oas.json": ConfigFixture.routes([
                ("GET", "/api/items", "{ " + forward + #", "corsPolicy": "app", "policies": { "inbound": ["auth"] } }"#),
                ("GET", "/closed", "{ " + forward + #", "corsPolicy": "elsewhere" }"#),
            ]),
            "config/policies.json": #"{ "corsPolicies": [ { "name": "app", "allowedOrigins": [""# + page + #""], "allowedMethods": ["GET"], "allowedHeaders": ["Authorization", "Content-Type"], "exposeHeaders": ["X-Request-Id"] }, "#
                + #"{ "name": "elsewhere", "allowedOrigins": ["https://elsewhere.test"], "allowedHeaders": ["Authorization"] } ], "#
                + #""policies": [ { "name": "auth", "policyType": "api-key-inbound" } ] }"#,
            "config/consumers.json": #"{ "consumers": [ { "sub": "pro-co", "keys": [ { "sha256": ""# + RateLimitTierTests.keyHashes["pro"]! + #"" } ] } ] }"#,
        ])
        defer { fixture.remove() }
        do {
            try await withGateway(fixture) { gateway, upstreams, _ in
                try site.write("config/routes.oas.json", try Self.pageRoutes("""
                <html><body><div id="result">pending</div><script>
                (async () => {
                  const out = [];
                  try {
                    const r = await fetch("\(gateway.baseURL)/api/items", { headers: { "Authorization": "Bearer sk_tier_pro", "Content-Type": "application/json" } });
                    out.push("allowed:" + r.status + ":" + (r.headers.get("x-request-id") ? "exposed" : "hidden"));
                  } catch (e) { out.push("allowed:blocked"); }
                  try {
                    const r = await fetch("\(gateway.baseURL)/closed", { headers: { "Authorization": "Bearer x" } });
                    out.push("closed:" + r.status);
                  } catch (e) { out.push("closed:blocked"); }
                  document.getElementById("result").textContent = out.join(" ");
                })();
                </script></body></html>
                """))
                guard case .success = await pageServer.reloader.reload(reason: "test") else { throw TestHarnessError("the page did not reload") }

                let profile = NSTemporaryDirectory() + "gatehouse-chromium-" + UUID().uuidString
                try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: profile) }
                let run = Process()
                run.executableURL = URL(fileURLWithPath: browser)
                run.arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + profile + "/data",
                                 "--virtual-time-budget=15000", "--dump-dom", page + "/index.html"]
                // Into a file, not a pipe: Chromium's helper processes may hold a pipe open after
                // the browser itself has exited.
                let domFile = profile + "/dom.html"
                _ = FileManager.default.createFile(atPath: domFile, contents: nil)
                let output = try FileHandle(forWritingTo: URL(fileURLWithPath: domFile))
                run.standardOutput = output
                run.standardError = FileHandle.nullDevice
                try run.run()
                for _ in 0..<1200 where run.isRunning { try await Task.sleep(for: .milliseconds(50)) }
                if run.isRunning { run.terminate() }
                run.waitUntilExit()
                try output.close()
                let dom = (try? String(contentsOfFile: domFile, encoding: .utf8)) ?? ""
                let result = dom.range(of: #"<div id="result">"#).map { dom[$0.upperBound...].prefix { $0 != "<" } }.map(String.init) ?? dom
                #expect(result == "allowed:200:exposed closed:blocked", "\(result)")
                // The allowed call reached the upstream once (its preflight did not); the refused
                // one never left the gateway.
                #expect(upstreams["main"]!.requestCount == 1)
            }
        } catch {
            try await pageServer.stop()
            throw error
        }
        try await pageServer.stop()
    }
}

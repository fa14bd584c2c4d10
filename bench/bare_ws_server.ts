// Baseline for the fleet benchmark: a bare Deno.upgradeWebSocket server that accepts
// sockets and reads their frames, nothing else. `deno run -A bench/bare_ws_server.ts <port>`
const port = Number(Deno.args[0] ?? 8790);
Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, (req) => {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("ok");
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = () => {};
  return response;
});

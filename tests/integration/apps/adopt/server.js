// A node server that binds its own port (it knows nothing of fd 3).
const http = require("http");
const fs = require("fs");
const port = Number(process.argv[2]);
http.createServer((req, res) => {
  const version = /'(.*)'/.exec(fs.readFileSync("version.py", "utf8"))[1];
  res.end(version);
}).listen(port, "127.0.0.1");

// Makes `require("pulumi-baremetal/...")` resolve from inside this checkout's own
// node_modules (the dynamic-provider host loads the implementation by package name
// from next to @pulumi/pulumi). A relative link, so the checkout can move.
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..");
const link = path.join(root, "node_modules", "pulumi-baremetal");
if (!fs.existsSync(path.join(root, "node_modules"))) process.exit(0);
try {
    if (fs.readlinkSync(link) === "..") process.exit(0);
    fs.unlinkSync(link);
} catch (e) {
    if (e.code !== "ENOENT") throw e;
}
fs.symlinkSync("..", link, "dir");

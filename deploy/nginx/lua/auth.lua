-- Authentication of the gateway's /api/ requests (access_by_lua_file).
--
--   POST /api/login, GET /api/skus/{id}      public
--   /api/admin/..., /api/analytics/...       Authorization: Bearer <admin_token>
--                                            (none or wrong: 401 UNAUTHORIZED;
--                                            a valid user token: 403 FORBIDDEN)
--   every other /api/...                     Authorization: Bearer <user token>
--                                            (none, bad or expired: 401 UNAUTHORIZED)
--
-- A user token is v1.<user_id>.<exp_unix_seconds>.<sig>: user_id matches
-- ^[A-Za-z0-9_-]{1,64}$, and sig is HMAC-SHA1 keyed with the token_secret
-- string's bytes as they are, over "v1.<user_id>.<exp_unix_seconds>", in
-- base64url without padding. The services sign it the same way
-- (services/auth). A valid token's user reaches the service as X-User-Id;
-- whatever X-User-Id the client sent is removed first.
--
-- The secrets come from the qianlang_secrets module that the rendered
-- nginx.conf defines in init_by_lua_block.

local secrets = require "qianlang_secrets"

local bit = require "bit"
local bxor, bor, byte = bit.bxor, bit.bor, string.byte

local token_secret = secrets.token_secret
local admin_token = secrets.admin_token

local function reject(status, code, message)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    if status == ngx.HTTP_UNAUTHORIZED then
        ngx.header["WWW-Authenticate"] = 'Bearer realm="qianlang"'
    end
    local body = '{"error":{"code":"' .. code .. '","message":"' .. message .. '"}}'
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(status)
end

-- equal compares two strings in time that depends only on their lengths.
local function equal(a, b)
    if #a ~= #b then
        return false
    end
    local diff = 0
    for i = 1, #a do
        diff = bor(diff, bxor(byte(a, i), byte(b, i)))
    end
    return diff == 0
end

local function sign(payload)
    local sig = ngx.encode_base64(ngx.hmac_sha1(token_secret, payload), true)
    return (sig:gsub("%+", "-"):gsub("/", "_"))
end

-- user returns the user id of a valid, unexpired user token, or nil.
local function user(token)
    if not token then
        return nil
    end
    local id, exp, sig = token:match("^v1%.([A-Za-z0-9_%-]+)%.(%d+)%.([A-Za-z0-9_%-]+)$")
    if not id or #id > 64 or #exp > 15 then
        return nil
    end
    if not equal(sign("v1." .. id .. "." .. exp), sig) then
        return nil
    end
    if tonumber(exp) <= ngx.time() then
        return nil
    end
    return id
end

local function bearer()
    local h = ngx.var.http_authorization
    if not h then
        return nil
    end
    return h:match("^Bearer%s+(%S+)%s*$")
end

ngx.req.clear_header("X-User-Id")

local uri = ngx.var.uri
local method = ngx.req.get_method()

if uri == "/api/login" and method == "POST" then
    return
end
if (method == "GET" or method == "HEAD") and uri:find("^/api/skus/[^/]+$") then
    return
end

local token = bearer()
if uri:find("^/api/admin/") or uri == "/api/admin" or uri:find("^/api/analytics/") or uri == "/api/analytics" then
    if token and equal(token, admin_token) then
        return
    end
    if user(token) then
        return reject(ngx.HTTP_FORBIDDEN, "FORBIDDEN", "admin token required")
    end
    return reject(ngx.HTTP_UNAUTHORIZED, "UNAUTHORIZED", "admin token required")
end

if uri:find("^/api/") or uri == "/api" then
    local id = user(token)
    if not id then
        return reject(ngx.HTTP_UNAUTHORIZED, "UNAUTHORIZED", "missing, bad or expired token")
    end
    ngx.req.set_header("X-User-Id", id)
end

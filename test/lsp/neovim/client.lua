-- Neovim's own LSP client (0.7+), headless: open the recipe, wait for niftyc lsp's
-- diagnostics, ask for completion and hover, write what came back as JSON.
local cmd = { os.getenv("NIFTYC_NODE"), os.getenv("NIFTYC_BIN"), "lsp" }
local recipe = os.getenv("NIFTYC_RECIPE")
local out = os.getenv("NIFTYC_OUT")

local function finish(result)
  vim.fn.writefile({ vim.fn.json_encode(result) }, out)
  vim.cmd("qall!")
end

vim.cmd("edit " .. vim.fn.fnameescape(recipe))
local buf = vim.api.nvim_get_current_buf()
local root = vim.fn.fnamemodify(recipe, ":h")
local client = vim.lsp.start_client({ name = "niftyc", cmd = cmd, root_dir = root })
if client == nil then
  finish({ error = "start_client failed" })
end
vim.lsp.buf_attach_client(buf, client)

local ok = vim.wait(20000, function()
  return #vim.diagnostic.get(buf) > 0
end, 50)
local diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(diagnostics, {
    lnum = d.lnum, col = d.col, severity = d.severity, message = d.message, code = d.code,
  })
end

local uri = vim.uri_from_bufnr(buf)
local function request(method, line, character)
  local params = { textDocument = { uri = uri }, position = { line = line, character = character } }
  local responses = vim.lsp.buf_request_sync(buf, method, params, 10000) or {}
  for _, r in pairs(responses) do
    if r.result ~= nil then
      return r.result
    end
  end
  return vim.NIL
end

local completion = request("textDocument/completion", 2, 0)
local labels = {}
local items = completion ~= vim.NIL and (completion.items or completion) or {}
for _, item in ipairs(items) do
  table.insert(labels, item.label)
end
local hover = request("textDocument/hover", 0, 1)

finish({
  waited = ok,
  diagnostics = diagnostics,
  completion = labels,
  hover = hover ~= vim.NIL and hover.contents.value or vim.NIL,
})

"""Rich-menu images: checked against LINE's rules (`images`) or drawn from the area labels
with a bundled Japanese font (`render`), so a business can start without a designer.

Pure image work on plain values: imports only `bot.line.limits` (LINE's size rules). What a
menu document means for LINE (its request object, taps) is `bot.catalogue.richmenu_definition`;
which menu a friend sees is `bot.engine.menus`; syncing with LINE is
`bot.services.richmenu_sync`.
"""

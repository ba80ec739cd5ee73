"""Rich menus as code: menus declared in the catalogue YAML, their images checked against
LINE's rules (`images`) or drawn from the area labels with a bundled Japanese font (`render`),
so a business can start without a designer.
"""

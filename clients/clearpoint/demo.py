def register(groups): pass

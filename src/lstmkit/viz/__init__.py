"""lstmkit.viz"""

"""lstmkit.nn.fused"""

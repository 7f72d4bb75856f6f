"""Web checkout: carts, turning a cart into a reserved order, paying it."""

# Design document "Multi-App Support", section "App-Specific Services" (python block 5, line 493, fingerprint 1df858df608f).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# canopy/services/order_service.py
import uuid  # added: the document uses uuid.uuid4 without importing uuid
from timber.common.services.base import BaseService
from timber.common import get_model

class OrderService(BaseService):
    """Canopy-specific order management service"""
    
    def create_order(self, user_id: str, symbol: str, 
                    order_type: str, quantity: int, price: float):
        """Create trading order"""
        Order = self._get_model('Order')
        
        with self.db.session_scope() as session:
            order = Order(
                id=str(uuid.uuid4()),
                user_id=user_id,
                symbol=symbol,
                order_type=order_type,
                quantity=quantity,
                price=price,
                status='pending'
            )
            
            session.add(order)
            session.commit()
            
            return order.id
    
    def get_user_orders(self, user_id: str, status: str = None):
        """Get orders for user"""
        Order = self._get_model('Order')
        
        with self.db.session_scope() as session:
            query = session.query(Order).filter_by(user_id=user_id)
            
            if status:
                query = query.filter_by(status=status)
            
            return query.order_by(Order.created_at.desc()).all()

# Create instance
from timber.common.models.base import db_manager
order_service = OrderService(db_manager)
